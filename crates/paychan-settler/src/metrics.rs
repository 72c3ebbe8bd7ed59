//! Prometheus metrics of the settler (OpenMetrics text via `prometheus-client`).
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// Kind of failure counted in `paychan_settler_failures_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum FailureKind {
    /// A JSON-RPC call failed (each retry counts).
    Rpc,
    /// A voucher was refused by the program.
    Voucher,
    /// A transaction landed with an error (its fee was paid).
    Landed,
    /// A transaction was not confirmed in time.
    Unconfirmed,
    /// A channel was given up on after the retries.
    Channel,
    /// A whole run failed (store or RPC reads).
    Run,
    /// The settler lease could not be read, renewed or released.
    Lease,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FailureLabels {
    pub(crate) kind: FailureKind,
}

pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    pub(crate) runs: Counter,
    pub(crate) transactions: Counter,
    pub(crate) closes: Counter,
    pub(crate) vouchers: Counter,
    pub(crate) value: Counter,
    pub(crate) fees: Counter,
    pub(crate) failures: Family<FailureLabels, Counter>,
    pub(crate) unsettled: Gauge,
    pub(crate) urgent_deferred: Counter,
    pub(crate) lease_skipped: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("transactions", &self.transactions.get())
            .field("vouchers", &self.vouchers.get())
            .field("value", &self.value.get())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("paychan_settler");
        let runs = Counter::default();
        let transactions = Counter::default();
        let closes = Counter::default();
        let vouchers = Counter::default();
        let value = Counter::default();
        let fees = Counter::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let unsettled = Gauge::default();
        let urgent_deferred = Counter::default();
        let lease_skipped = Counter::default();
        registry.register("runs", "Settlement runs completed", runs.clone());
        registry.register(
            "transactions",
            "Settle transactions confirmed",
            transactions.clone(),
        );
        registry.register(
            "closes",
            "Channels closed cooperatively at their payer's request",
            closes.clone(),
        );
        registry.register(
            "vouchers_settled",
            "Vouchers settled on chain",
            vouchers.clone(),
        );
        registry.register(
            "value_settled",
            "Token base units moved to the payee",
            value.clone(),
        );
        registry.register(
            "fee_lamports",
            "Lamports paid in transaction fees",
            fees.clone(),
        );
        registry.register("failures", "Failures by kind", failures.clone());
        registry.register(
            "unsettled_value",
            "Accepted value not yet settled on chain (base units, all mints) after the last run",
            unsettled.clone(),
        );
        registry.register(
            "urgent_deferred",
            "Urgent requests left to the normal schedule (throttled, or too little ahead)",
            urgent_deferred.clone(),
        );
        registry.register(
            "lease_skipped_runs",
            "Runs skipped because another settler holds the lease",
            lease_skipped.clone(),
        );
        Self {
            registry,
            runs,
            transactions,
            closes,
            vouchers,
            value,
            fees,
            failures,
            unsettled,
            urgent_deferred,
            lease_skipped,
        }
    }

    pub(crate) fn fail(&self, kind: FailureKind) {
        self.failures.get_or_create(&FailureLabels { kind }).inc();
    }

    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
