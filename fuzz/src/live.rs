//! What the live-path harnesses share: one current-thread runtime for the
//! whole process, the fixture channel, and the store's invariants.
#![allow(clippy::expect_used)] // a harness's assertion is the point

use std::sync::{Arc, OnceLock};

use axum::{Router, body::Body, response::Response};
use paychan_verifier::{
    Accepted, ChannelSnapshot, MemoryChannels, MemoryStore, Verifier, VoucherStore,
};

use crate::fixture;

/// Built once per process.
pub(crate) struct Fixed {
    rt: tokio::runtime::Runtime,
    snapshot: ChannelSnapshot,
}

pub(crate) fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| Fixed {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime"),
        snapshot: fixture::open_snapshot().expect("the fixture channel decodes"),
    })
}

/// A fresh verifier (a few cached keys) over a fresh store holding nothing,
/// knowing the fixture channel only.
pub(crate) fn verifier() -> (
    Arc<Verifier<MemoryChannels, Arc<MemoryStore>>>,
    Arc<MemoryStore>,
) {
    let channels = MemoryChannels::default();
    channels
        .upsert(fixed().snapshot.clone())
        .expect("one channel fits");
    let store = Arc::new(MemoryStore::default());
    let verifier = Verifier::with_key_cache(channels, store.clone(), fixture::terms(), 8);
    (Arc::new(verifier), store)
}

/// Sends `req` through `app` and reads the whole answer.
pub(crate) fn send(app: &Router, req: http::Request<Body>) -> (http::response::Parts, Vec<u8>) {
    use tower::ServiceExt;
    fixed().rt.block_on(async {
        let res: Response = match app.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        };
        let (parts, body) = res.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20)
            .await
            .expect("a response body reads");
        (parts, body.to_vec())
    })
}

/// The store's records, in channel order.
pub(crate) fn records(store: &MemoryStore) -> Vec<Accepted> {
    let mut all = store.all_latest().expect("the memory store reads");
    all.sort_by_key(|a| a.channel().to_bytes());
    all
}

/// The store's invariants after a request, given its records before it:
/// only the fixture channel (the only one the verifier knows) ever has an
/// accepted voucher, signed by the channel's key, never above the deposit,
/// and its cumulative amount never decreases. Returns the records.
pub(crate) fn check_store(store: &MemoryStore, before: &[Accepted]) -> Vec<Accepted> {
    let after = records(store);
    assert!(after.len() <= 1, "vouchers of unknown channels: {after:?}");
    let (old, new) = (before.first(), after.first());
    if let Some(new) = new {
        assert_eq!(
            new.channel(),
            fixture::CHANNEL,
            "a voucher of a channel the verifier does not know"
        );
        let cumulative = new.voucher.voucher.cumulative_amount;
        assert!(
            cumulative <= fixture::DEPOSIT,
            "accepted {cumulative} on a deposit of {}",
            fixture::DEPOSIT
        );
        if old != Some(new) {
            assert!(
                new.voucher.verify_strict().is_ok(),
                "accepted a forged voucher"
            );
            assert_eq!(
                new.voucher.signer,
                fixture::key().verifying_key().to_bytes()
            );
            if let Some(old) = old {
                let was = old.voucher.voucher.cumulative_amount;
                assert!(
                    cumulative > was,
                    "the accepted cumulative went {was} → {cumulative}"
                );
                assert_eq!(new.previous, was, "the new voucher replaced {was}");
            }
        }
    } else {
        assert!(old.is_none(), "an accepted voucher was forgotten");
    }
    after
}
