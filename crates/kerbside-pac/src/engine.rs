//! The JavaScript side: one QuickJS runtime on a thread of its own, the PAC
//! functions installed, the script evaluated, `FindProxyForURL` called with a
//! wall-clock deadline (QuickJS's interrupt handler, which a `try` cannot catch)
//! and a memory limit. A runtime that hit a limit is thrown away and rebuilt
//! from the script for the next call, so a call never sees another's leftovers.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Instant;

use rquickjs::convert::Coerced;
use rquickjs::{Context, Ctx, Function, Runtime, Value};
use tokio::sync::oneshot;

use crate::{native, PacError, PacLimits};

/// The standard PAC functions written in JavaScript.
const PAC_UTILS: &str = include_str!("pac_utils.js");

/// Work for the PAC thread.
pub(crate) enum Job {
    /// Replace the script.
    Load {
        script: String,
        reply: oneshot::Sender<Result<(), PacError>>,
    },
    /// Forget the script (every call answers [`PacError::NotLoaded`]).
    Unload,
    /// Call `FindProxyForURL(url, host)`.
    Find {
        url: String,
        host: String,
        reply: oneshot::Sender<Result<String, PacError>>,
    },
}

/// A runtime with a script evaluated in it.
struct Loaded {
    // The context holds the runtime alive; both are dropped together.
    context: Context,
    _runtime: Runtime,
    deadline: Rc<Cell<Option<Instant>>>,
}

/// The PAC thread's loop: runs until every sender is dropped.
pub(crate) fn serve(jobs: mpsc::Receiver<Job>, limits: PacLimits) {
    let mut script: Option<String> = None;
    let mut loaded: Option<Loaded> = None;
    for job in jobs {
        match job {
            Job::Load { script: s, reply } => {
                loaded = None;
                script = None;
                let result = build(&s, limits).map(|l| {
                    loaded = Some(l);
                    script = Some(s);
                });
                let _ = reply.send(result);
            }
            Job::Unload => {
                loaded = None;
                script = None;
            }
            Job::Find { url, host, reply } => {
                let Some(source) = &script else {
                    let _ = reply.send(Err(PacError::NotLoaded));
                    continue;
                };
                if loaded.is_none() {
                    match build(source, limits) {
                        Ok(l) => loaded = Some(l),
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            continue;
                        }
                    }
                }
                let Some(l) = &loaded else { continue };
                let result = find(l, limits, &url, &host);
                if matches!(
                    result,
                    Err(PacError::TimeLimit(_) | PacError::MemoryLimit(_) | PacError::Engine(_))
                ) {
                    // Its heap may be in any state: start afresh next time.
                    loaded = None;
                }
                let _ = reply.send(result);
            }
        }
    }
}

/// A fresh runtime with the PAC functions and `script` evaluated, within the
/// limits.
fn build(script: &str, limits: PacLimits) -> Result<Loaded, PacError> {
    let engine = |e: rquickjs::Error| PacError::Engine(e.to_string());
    let runtime = Runtime::new().map_err(engine)?;
    runtime.set_memory_limit(limits.memory);
    runtime.set_max_stack_size(limits.stack);
    let deadline: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
    let d = deadline.clone();
    runtime.set_interrupt_handler(Some(Box::new(move || {
        d.get().is_some_and(|t| Instant::now() >= t)
    })));
    let context = Context::full(&runtime).map_err(engine)?;
    deadline.set(Some(Instant::now() + limits.time));
    let result = context.with(|ctx| -> Result<(), PacError> {
        install_natives(&ctx).map_err(engine)?;
        ctx.eval::<(), _>(PAC_UTILS)
            .map_err(|e| PacError::Engine(format!("the PAC functions: {}", caught(&ctx, e).0)))?;
        ctx.eval::<(), _>(script)
            .map_err(|e| classify(&ctx, e, &deadline, limits, PacError::Script))?;
        let f: Value = ctx.globals().get("FindProxyForURL").map_err(engine)?;
        if f.is_function() {
            Ok(())
        } else {
            Err(PacError::NoFunction)
        }
    });
    deadline.set(None);
    result?;
    Ok(Loaded {
        context,
        _runtime: runtime,
        deadline,
    })
}

/// `myIpAddress()`, and the back ends of `dnsResolve(host)` (`""` for no
/// address) and `alert(message)`.
fn install_natives(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    globals.set(
        "myIpAddress",
        Function::new(ctx.clone(), || native::my_ip_address().to_string())?,
    )?;
    globals.set(
        "__kerbside_dns_resolve",
        Function::new(ctx.clone(), |host: Coerced<String>| {
            native::dns_resolve(&host.0).map_or_else(String::new, |ip| ip.to_string())
        })?,
    )?;
    globals.set(
        "__kerbside_alert",
        Function::new(ctx.clone(), |message: Coerced<String>| {
            // One line, bounded: a script cannot forge log lines.
            let m: String = message
                .0
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(500)
                .collect();
            tracing::info!("PAC alert: {m}");
        })?,
    )?;
    Ok(())
}

/// Calls `FindProxyForURL(url, host)` within the limits.
fn find(l: &Loaded, limits: PacLimits, url: &str, host: &str) -> Result<String, PacError> {
    l.deadline.set(Some(Instant::now() + limits.time));
    let result = l.context.with(|ctx| -> Result<String, PacError> {
        let engine = |e: rquickjs::Error| PacError::Engine(e.to_string());
        let f: Function = ctx.globals().get("FindProxyForURL").map_err(engine)?;
        let value: Value = f
            .call((url, host))
            .map_err(|e| classify(&ctx, e, &l.deadline, limits, PacError::Exception))?;
        match value.as_string() {
            Some(s) => s.to_string().map_err(engine),
            None => Err(PacError::NotAString(value.type_name().to_owned())),
        }
    });
    l.deadline.set(None);
    result
}

/// The error a failed evaluation means: past the deadline is the time limit, an
/// out-of-memory the memory limit, anything else what the script threw.
fn classify(
    ctx: &Ctx<'_>,
    e: rquickjs::Error,
    deadline: &Cell<Option<Instant>>,
    limits: PacLimits,
    thrown: fn(String) -> PacError,
) -> PacError {
    let (message, null) = caught(ctx, e);
    if deadline.get().is_some_and(|t| Instant::now() >= t) {
        return PacError::TimeLimit(limits.time);
    }
    // QuickJS throws `null` when it has no memory left to make the error.
    if null
        || message.contains("out of memory")
        || message.contains("stack overflow")
        || message.contains("call stack size exceeded")
    {
        return PacError::MemoryLimit(limits.memory);
    }
    thrown(message)
}

/// The pending exception's message (and line), bounded; and whether it was
/// `null`.
fn caught(ctx: &Ctx<'_>, e: rquickjs::Error) -> (String, bool) {
    let mut null = false;
    let text = if e.is_exception() {
        let value = ctx.catch();
        null = value.is_null();
        if let Some(ex) = value.as_exception() {
            let message = ex.message().unwrap_or_default();
            let line = ex
                .stack()
                .and_then(|s| s.lines().next().map(|l| l.trim().to_owned()));
            match line {
                Some(l) if !l.is_empty() => format!("{message} ({l})"),
                _ => message,
            }
        } else {
            match value.get::<Coerced<String>>() {
                Ok(s) => format!("throw {}", s.0),
                Err(_) => "an exception".to_owned(),
            }
        }
    } else {
        e.to_string()
    };
    // One line, bounded: it goes into the log.
    let text = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    (text, null)
}
