//! The synthetic set: deterministic, balanced, and learnable but not trivially so.

use parnet_data::{Dataset, SyntheticSet};

#[test]
fn same_seed_same_images_other_seed_other_images() {
    let a = SyntheticSet::new(20, 7);
    let b = SyntheticSet::new(20, 7);
    let c = SyntheticSet::new(20, 8);
    for i in 0..20 {
        assert_eq!(a.get(i).unwrap(), b.get(i).unwrap());
        assert_ne!(a.get(i).unwrap().0, c.get(i).unwrap().0);
    }
    assert_eq!((a.num_classes(), a.label(13).unwrap()), (10, 3));
    assert_eq!(a.class_names()[7], "cool-triangle");
    assert!(a.get(20).is_err());
}

/// Nearest-class-mean on raw pixels (3072 features): well above chance (10%), far below 100%.
#[test]
fn nearest_class_mean_is_above_chance_but_far_from_perfect() {
    let train = SyntheticSet::new(3000, 1);
    let test = SyntheticSet::new(1000, 2);
    let features = |set: &SyntheticSet, i: usize| -> Vec<f64> {
        set.get(i)
            .unwrap()
            .0
            .data
            .iter()
            .map(|&v| v as f64)
            .collect()
    };
    let mut means = vec![vec![0f64; 3072]; 10];
    for i in 0..train.len() {
        let label = train.label(i).unwrap();
        for (m, v) in means[label].iter_mut().zip(features(&train, i)) {
            *m += v / 300.0;
        }
    }
    let correct = (0..test.len())
        .filter(|&i| {
            let x = features(&test, i);
            let nearest = (0..10)
                .min_by(|&a, &b| {
                    let da: f64 = x.iter().zip(&means[a]).map(|(p, q)| (p - q).powi(2)).sum();
                    let db: f64 = x.iter().zip(&means[b]).map(|(p, q)| (p - q).powi(2)).sum();
                    da.total_cmp(&db)
                })
                .unwrap();
            nearest == test.label(i).unwrap()
        })
        .count();
    let accuracy = correct as f64 / test.len() as f64;
    eprintln!("nearest-class-mean accuracy on the synthetic set: {accuracy:.3}");
    assert!((0.15..0.70).contains(&accuracy), "accuracy {accuracy}");
}
