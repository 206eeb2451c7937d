//! What [`register!`](crate::register) expands to: the glue between the raw
//! exports and a [`Filter`]. Not a public API; its items may change in any
//! release.

use std::cell::UnsafeCell;

use crate::host::{self, raw};
use crate::{abi, log, Action, Filter, Message, MessageAction, Request, Response};

/// The configured filter of this instance.
///
/// A guest instance is single-threaded and serves one hook call at a time
/// (ABI.md, "Life of an instance"), and `sluice_configure` runs before any
/// hook, so a plain cell is enough: the filter is written once and then only
/// read. The exports that touch it are generated inside an anonymous const by
/// [`register!`](crate::register), so no Rust code can reach them.
pub struct Slot<F>(UnsafeCell<Option<F>>);

// SAFETY: see the type's documentation: the only accesses are from the
// exports, which the host calls one at a time on one thread.
unsafe impl<F> Sync for Slot<F> {}

impl<F: Filter> Slot<F> {
    /// An empty slot.
    pub const fn new() -> Slot<F> {
        Slot(UnsafeCell::new(None))
    }

    /// Builds the filter from the config and stores it; the result of
    /// `sluice_configure`.
    pub fn configure(&self, config_len: i32) -> i32 {
        let config = host::read(config_len.max(0) as usize, |buf, cap| unsafe {
            host::get_config(buf, cap)
        })
        .unwrap_or_default();
        match configure::<F>(&config) {
            Some(f) => {
                // SAFETY: no reference into the slot is alive: hooks do not
                // run during configure.
                unsafe { *self.0.get() = Some(f) };
                0
            }
            None => 1,
        }
    }

    /// The configured filter. A hook called before `sluice_configure` is ABI
    /// misuse by the host; the guest traps.
    pub fn get(&self) -> &F {
        // SAFETY: written only by configure, which never runs during a hook.
        match unsafe { &*self.0.get() } {
            Some(f) => f,
            None => trap(),
        }
    }
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    panic!("sluice: hook called before sluice_configure");
}

/// Runs [`Filter::configure`], logging the error when it fails.
pub fn configure<F: Filter>(config: &[u8]) -> Option<F> {
    match F::configure(config) {
        Ok(f) => Some(f),
        Err(e) => {
            log::error(e.message());
            None
        }
    }
}

fn respond(action: Action) -> i32 {
    match action {
        Action::Continue => abi::ACTION_CONTINUE,
        Action::Respond(r) => {
            let mut pairs = Vec::new();
            for (name, value) in &r.headers {
                pairs.extend_from_slice(name.as_bytes());
                pairs.push(0);
                pairs.extend_from_slice(value.as_bytes());
                pairs.push(0);
            }
            let (h, hl) = raw(&pairs);
            let (b, bl) = raw(&r.body);
            unsafe { host::send_response(r.status as i32, h, hl, b, bl) };
            abi::ACTION_RESPOND
        }
    }
}

/// `sluice_hooks`: what the filter asks for, never more than it declared.
pub fn hooks<F: Filter>(f: &F) -> i32 {
    f.hooks().intersect(F::HOOKS).bits() as i32
}

/// A [`Response`] handle outside a hook, for the SDK's own tests.
#[cfg(not(target_arch = "wasm32"))]
pub fn response_for_tests() -> Response {
    Response::new()
}

/// `sluice_on_request_headers`.
pub fn on_request_headers<F: Filter>(f: &F) -> i32 {
    respond(f.on_request_headers(&mut Request::new()))
}

/// `sluice_on_upgrade`.
pub fn on_upgrade<F: Filter>(f: &F) -> i32 {
    respond(f.on_upgrade(&mut Request::new()))
}

/// `sluice_on_response_headers`.
pub fn on_response_headers<F: Filter>(f: &F) -> i32 {
    respond(f.on_response_headers(&mut Response::new()))
}

/// `sluice_on_message`.
pub fn on_message<F: Filter>(f: &F, direction: i32, kind: i32, len: i32) -> i32 {
    match f.on_message(&mut Message::new(direction, kind, len)) {
        MessageAction::Pass => abi::ACTION_PASS,
        MessageAction::Drop => abi::ACTION_DROP,
        MessageAction::Close { code, reason } => {
            let (r, rl) = raw(reason.as_bytes());
            unsafe { host::close_websocket(code as i32, r, rl) };
            abi::ACTION_CLOSE
        }
    }
}

/// `sluice_on_close`.
pub fn on_close<F: Filter>(f: &F) {
    f.on_close()
}

/// Turns a [`Filter`] into the exports of Sluice ABI v1.
///
/// Use it once per crate (a `cdylib`), at the top level:
///
/// ```ignore
/// sluice::register!(MyFilter);
/// ```
///
/// It exports `sluice_abi_version`, `sluice_configure` (which builds the
/// filter with [`Filter::configure`]), `sluice_hooks` (from
/// [`Filter::hooks`]), `sluice_features` (from [`Filter::FEATURES`]) and every
/// hook; the host calls only the hooks in `HOOKS`.
#[macro_export]
macro_rules! register {
    ($filter:ty) => {
        const _: () = {
            static SLUICE_FILTER: $crate::__private::Slot<$filter> = $crate::__private::Slot::new();

            #[no_mangle]
            extern "C" fn sluice_abi_version() -> i32 {
                $crate::abi::VERSION
            }

            #[no_mangle]
            extern "C" fn sluice_configure(config_len: i32) -> i32 {
                SLUICE_FILTER.configure(config_len)
            }

            #[no_mangle]
            extern "C" fn sluice_hooks() -> i32 {
                $crate::__private::hooks(SLUICE_FILTER.get())
            }

            #[no_mangle]
            extern "C" fn sluice_features() -> i32 {
                <$filter as $crate::Filter>::FEATURES.bits() as i32
            }

            #[no_mangle]
            extern "C" fn sluice_on_request_headers() -> i32 {
                $crate::__private::on_request_headers(SLUICE_FILTER.get())
            }

            #[no_mangle]
            extern "C" fn sluice_on_upgrade() -> i32 {
                $crate::__private::on_upgrade(SLUICE_FILTER.get())
            }

            #[no_mangle]
            extern "C" fn sluice_on_response_headers() -> i32 {
                $crate::__private::on_response_headers(SLUICE_FILTER.get())
            }

            #[no_mangle]
            extern "C" fn sluice_on_message(direction: i32, kind: i32, len: i32) -> i32 {
                $crate::__private::on_message(SLUICE_FILTER.get(), direction, kind, len)
            }

            #[no_mangle]
            extern "C" fn sluice_on_close() {
                $crate::__private::on_close(SLUICE_FILTER.get())
            }
        };
    };
}
