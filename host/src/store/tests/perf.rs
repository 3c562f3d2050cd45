//! Temporary measurements; not kept.

use std::time::Instant;

use super::*;
use crate::pipeline::store::DeploymentFilter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure() {
    on_each_backend(|db| async move {
        let store = db.store;
        let start = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..12_500u32 {
                        let d = DeploymentRecord {
                            pipeline_id: format!("pipeline-{}", (i + t) % 20),
                            ..deployment(
                                &format!("t{}", i % 50),
                                "1.0.0.1",
                                if i % 10 == 0 {
                                    Some(u64::from(i))
                                } else {
                                    None
                                },
                            )
                        };
                        let d = if i % 10 == 0 {
                            d
                        } else {
                            DeploymentRecord {
                                status: DeploymentStatus::Succeeded,
                                ..d
                            }
                        };
                        store
                            .insert_deployment(
                                &d,
                                &[event(&d, 0, "requested")],
                                &audit("deployment.create", &d.id),
                            )
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        eprintln!(
            "{:?}: 100k inserts in {:?}",
            store.backend(),
            start.elapsed()
        );
        let mut times = Vec::new();
        let mut after: Option<String> = None;
        for i in 0..1000 {
            let filter = DeploymentFilter {
                pipeline_id: Some(format!("pipeline-{}", i % 20)),
                ..Default::default()
            };
            let t = Instant::now();
            let page_ = store
                .list_deployments(&filter, &page(after.as_deref(), 50))
                .await
                .unwrap();
            times.push(t.elapsed());
            after = if i % 10 == 9 {
                None
            } else {
                page_.last().map(|d| d.id.clone())
            };
        }
        times.sort();
        eprintln!(
            "{:?}: list by pipeline p50 {:?} p99 {:?} max {:?}",
            store.backend(),
            times[500],
            times[990],
            times[999]
        );
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            let filter = DeploymentFilter {
                statuses: vec![DeploymentStatus::Queued],
                ..Default::default()
            };
            store
                .list_deployments(&filter, &page(None, 50))
                .await
                .unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        eprintln!(
            "{:?}: list by status p50 {:?} p99 {:?}",
            store.backend(),
            times[100],
            times[198]
        );
        let mut times = Vec::new();
        for i in 0..200u64 {
            let t = Instant::now();
            let claimed = store
                .claim_due(1_000_000, "me", 2_000_000 + i, 10)
                .await
                .unwrap();
            times.push(t.elapsed());
            for d in claimed {
                store.release_lease(&d.id, "me").await.unwrap();
            }
        }
        times.sort();
        eprintln!(
            "{:?}: claim_due p50 {:?} p99 {:?}",
            store.backend(),
            times[100],
            times[198]
        );

        // The engine's write pattern: one insert and nine saves per deployment.
        let start = Instant::now();
        let n = 1000;
        let tasks: Vec<_> = (0..32)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    for _ in 0..n / 32 {
                        let mut d = deployment(&format!("w{t}"), "2", Some(1));
                        store
                            .insert_deployment(
                                &d,
                                &[event(&d, 0, "requested")],
                                &audit("deployment.create", &d.id),
                            )
                            .await
                            .unwrap();
                        for step in 0..9 {
                            d.status_reason = format!("step {step}");
                            d.revision = store
                                .save_deployment(&d, &[event(&d, 0, "step")], None)
                                .await
                                .unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed();
        eprintln!(
            "{:?}: {} deployments x 10 writes in {:?} = {:.0} deployments/s",
            store.backend(),
            n / 32 * 32,
            elapsed,
            (n / 32 * 32) as f64 / elapsed.as_secs_f64()
        );
    })
    .await;
}
