//! `--name value` flags of the summary binaries and examples (they take a few numbers, so no
//! argument parser).

/// The value after `name` on the command line, or `default` when `name` is absent.
///
/// Panics with the flag's name when the value is missing or not a number.
pub fn usize_flag(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(at) => {
            let value = args
                .get(at + 1)
                .unwrap_or_else(|| panic!("{name} needs a value"));
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name}: not a number: {value}"))
        }
        None => default,
    }
}

/// Whether `name` is on the command line.
pub fn has_flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}
