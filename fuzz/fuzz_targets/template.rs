//! The Go-template subset of `domainTemplate` and `pathTemplate`: parsing arbitrary sources
//! (with `fuzz/dictionaries/template.dict` supplying actions, trim markers and comments) and
//! rendering them. Parsing either succeeds or names a position inside the source; text without `{{`
//! renders to itself; a template renders whenever every field it reads is present; a failed
//! `render_into` leaves the output exactly as it was.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use isvc_ingress::template::{Field, Template, TemplateData};
use libfuzzer_sys::fuzz_target;

/// The values rendered and looked up, after the source.
#[derive(Debug, Default, Arbitrary)]
struct Values {
    name: String,
    namespace: String,
    ingress_domain: String,
    annotations: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    prefix: String,
}

// The input is the template source, then optionally a NUL byte and the values, so real
// templates (`fuzz/seeds/template`) are seeds as they are.
fuzz_target!(|data: &[u8]| {
    let (source, values) = match data.iter().position(|byte| *byte == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    let Ok(input) = Values::arbitrary(&mut Unstructured::new(values)) else {
        return;
    };
    let template = match Template::parse(source) {
        Ok(template) => template,
        Err(error) => {
            assert!(error.line >= 1 && error.column >= 1, "{error:?}");
            assert!(
                error.line <= source.lines().count().max(1) + 1,
                "{error:?} in {source:?}"
            );
            assert!(!error.message.is_empty());
            assert!(source.contains("{{"), "plain text refused: {error:?}");
            return;
        }
    };
    assert_eq!(template.source(), source);
    let data = TemplateData {
        name: &input.name,
        namespace: &input.namespace,
        ingress_domain: &input.ingress_domain,
        annotations: &input.annotations,
        labels: &input.labels,
    };
    if !source.contains("{{") {
        assert_eq!(template.render(&data).expect("plain text renders"), source);
    }
    let mut output = input.prefix.clone();
    match template.render(&data) {
        Ok(rendered) => {
            template.render_into(&data, &mut output).expect("same data");
            assert_eq!(output, format!("{}{rendered}", input.prefix));
        }
        Err(_) => {
            assert!(template.render_into(&data, &mut output).is_err());
            assert_eq!(
                output, input.prefix,
                "a failed render_into changed the output"
            );
        }
    }
    // With every field the template reads present, it renders.
    let mut annotations = input.annotations.clone();
    let mut labels = input.labels.clone();
    for field in template.fields() {
        match field {
            Field::Annotation(key) => {
                annotations.entry(key.clone()).or_default();
            }
            Field::Label(key) => {
                labels.entry(key.clone()).or_default();
            }
            Field::Name | Field::Namespace | Field::IngressDomain => {}
        }
    }
    let complete = TemplateData {
        annotations: &annotations,
        labels: &labels,
        ..data
    };
    template
        .render(&complete)
        .expect("a template renders when every field it reads is present");
});
