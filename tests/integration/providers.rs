//! Every workload provider passes the conformance suite
//! (`blastwall_tests::conformance`).

use std::sync::Arc;

use async_trait::async_trait;
use blastwall::provider::{DryRunFleet, FleetSpec, WorkloadProvider};
use blastwall::workload::Workload;
use blastwall_tests::conformance::{self, Fault, Injected, Subject};

/// The simulated fleet; faults are injected in front of it, since a
/// simulation has no platform to refuse, conflict or stall.
struct DryRun {
    fleet: Arc<DryRunFleet>,
    provider: Arc<Injected<dyn WorkloadProvider>>,
}

impl DryRun {
    fn new() -> Self {
        let fleet = Arc::new(DryRunFleet::new(FleetSpec::embedded_default()));
        let provider = Arc::new(Injected::new(fleet.clone() as Arc<dyn WorkloadProvider>));
        DryRun { fleet, provider }
    }
}

fn w(text: &str) -> Workload {
    text.parse().unwrap()
}

#[async_trait]
impl Subject for DryRun {
    fn provider(&self) -> Arc<dyn WorkloadProvider> {
        self.provider.clone()
    }

    fn scalable(&self) -> Workload {
        w("deployment/prod/checkout")
    }

    fn other(&self) -> Workload {
        w("deployment/prod/cart")
    }

    fn first_revision(&self) -> Workload {
        w("statefulset/prod/orders-db")
    }

    fn unscalable(&self) -> Option<Workload> {
        Some(w("daemonset/kube-system/node-exporter"))
    }

    fn missing(&self) -> Workload {
        w("deployment/prod/no-such-workload")
    }

    async fn restart_marker(&self, target: &Workload) -> String {
        self.fleet.restarts(target).unwrap().to_string()
    }

    async fn inject(&self, target: &Workload, fault: Fault) {
        self.provider.inject(target, fault);
    }
}

#[tokio::test]
async fn the_simulated_fleet_conforms() {
    conformance::run_all(&DryRun::new()).await;
}
