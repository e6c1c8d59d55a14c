//! Keeps `docs/configuration.md` in step with the code: every key of the gate's
//! configuration file (top level, `[[mount]]`, `[[access]]`) and every flag of `kerbside
//! gate` must be named there.

use std::path::PathBuf;

use clap::{Args, Command};
use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::client_args::ClientArgs;
use super::gate::{GateArgs, GateFile, MountFile};
use super::proxy::ProxyArgs;
use kerbside_server::access::AccessRule;

/// A deserializer that only records the field names a derived `Deserialize` asks for
/// (serde passes them to `deserialize_struct`), then stops.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

fn reference() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The part of the reference from `heading` to the next `## `.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("docs/configuration.md has no {heading:?} section"));
    let rest = &text[start + heading.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

fn missing(text: &str, names: impl IntoIterator<Item = String>) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| !text.contains(&format!("`{name}`")))
        .collect()
}

#[test]
fn the_recorder_sees_the_fields_of_a_struct() {
    // The check below is only as good as this: it would pass on an empty list.
    let top = fields_of::<GateFile>();
    assert!(top.contains(&"tls-cert") && top.contains(&"mount") && top.len() > 30);
    assert!(fields_of::<MountFile>().contains(&"upstream-timeout"));
    assert!(fields_of::<AccessRule>().contains(&"groups"));
}

#[test]
fn every_configuration_key_is_in_the_reference() {
    let text = reference();
    let top: Vec<String> = fields_of::<GateFile>()
        .iter()
        .filter(|k| !matches!(**k, "mount" | "access"))
        .map(|k| (*k).to_owned())
        .collect();
    let mount = fields_of::<MountFile>().iter().map(|k| (*k).to_owned());
    let access = fields_of::<AccessRule>().iter().map(|k| (*k).to_owned());
    let mut gaps = missing(&text, top);
    gaps.extend(
        missing(section(&text, "## `[[mount]]`"), mount)
            .into_iter()
            .map(|k| format!("[[mount]] {k}")),
    );
    gaps.extend(
        missing(section(&text, "## `[[access]]`"), access)
            .into_iter()
            .map(|k| format!("[[access]] {k}")),
    );
    assert!(
        gaps.is_empty(),
        "docs/configuration.md does not describe these configuration keys: {gaps:?}"
    );
}

#[test]
fn every_gate_flag_is_in_the_reference() {
    let mut cmd = GateArgs::augment_args(Command::new("gate"));
    cmd.build();
    let flags = cmd
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "help")
        .map(|l| format!("--{l}"));
    let text = reference();
    let gaps: Vec<String> = flags
        .filter(|flag| !text.contains(&format!("`{flag}`")) && !text.contains(&format!("`{flag} ")))
        .collect();
    assert!(
        gaps.is_empty(),
        "docs/configuration.md does not describe these flags of kerbside gate: {gaps:?}"
    );
}

#[test]
fn every_proxy_flag_is_in_the_reference() {
    let long_flags = |cmd: Command| -> Vec<String> {
        let mut cmd = cmd;
        cmd.build();
        cmd.get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "help")
            .map(|l| format!("--{l}"))
            .collect()
    };
    // The flags the proxy shares with fetch are documented with fetch (man kerbside-fetch),
    // except the two that route.
    let shared = long_flags(ClientArgs::augment_args(Command::new("client")));
    let text = section(&reference(), "## `kerbside proxy`").to_owned();
    let gaps: Vec<String> = long_flags(ProxyArgs::augment_args(Command::new("proxy")))
        .into_iter()
        .filter(|f| !shared.contains(f) || f == "--proxy" || f == "--noproxy")
        .filter(|f| !text.contains(&format!("`{f}`")) && !text.contains(&format!("`{f} ")))
        .collect();
    assert!(
        gaps.is_empty(),
        "docs/configuration.md does not describe these flags of kerbside proxy: {gaps:?}"
    );
}
