//! The compact forms in which the reconciler caches ISVCs and routes.
//!
//! Every replica caches every ISVC of the cluster and every route it manages. Held as kube's
//! `DynamicObject`, an object takes about ten times its JSON size in memory (every small map is
//! a `BTreeMap` node of several hundred bytes), and most of it is never read: `managedFields`,
//! `kubectl.kubernetes.io/last-applied-configuration`, a predictor's resources, env and storage,
//! the model status. So each object is cut on its way in, before the reflector or the route
//! cache stores it, to the fields routing reads, and kept as compact JSON text, deflated
//! against a dictionary of their vocabulary ([`Deflated`]: a pruned ISVC or route shrinks 6.7
//! to 7.5 times), that a reconcile inflates and parses again when it runs (microseconds per
//! object, against a reconcile that writes over the network).
//!
//! What "the fields routing reads" means is fixed by the readers, and each pruning function
//! below names the reader it serves; `tests/cached_objects.rs` proves, over every fixture and
//! example, that the readers give the same answers on the pruned object as on the whole one.

use super::kinds::ManagedKind;
use crate::isvc::ComponentKind;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::DynamicObject;
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::borrow::Cow;

use crate::plan::LAST_APPLIED_ANNOTATION;
use crate::plan::status::OwnUrls;

/// An InferenceService as the reconciler caches it: the metadata kube-runtime's Controller and
/// the reconcile read as an `ObjectMeta` (name, namespace, uid, resourceVersion, generation,
/// creation and deletion timestamps), and the rest of what routing reads as one compact JSON
/// document (`metadata` with name, namespace, uid, labels and annotations; `spec` and `status`
/// cut by [`prune_spec`] and [`prune_status`]).
///
/// Deserialised straight from the API server's JSON (a list or a watch event), skipping
/// `managedFields` and every other field without building it. The type is the Controller's
/// resource (`serving.kserve.io/v1beta1`, kind `InferenceService`).
#[derive(Debug, Clone, PartialEq)]
pub struct CachedInferenceService {
    metadata: ObjectMeta,
    document: Deflated,
    /// The status URLs isvc-ingress alone wrote (from `managedFields`, which is not kept).
    own_urls: OwnUrls,
}

impl CachedInferenceService {
    /// Reads a whole ISVC object (as a watch event carries it). Never fails on a JSON object:
    /// fields routing reads keep their type as written, and the planner names a wrong one.
    ///
    /// # Errors
    /// `object` is not a JSON object, or a metadata field the API server types (name,
    /// namespace, uid, resourceVersion, generation, timestamps) has another type.
    pub fn from_value(object: Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(object)
    }

    /// The pruned object as JSON text: `metadata` (name, namespace, uid, labels, annotations),
    /// the pruned `spec`, and the pruned `status`.
    ///
    /// # Errors
    /// Never in practice: the document is deflated JSON this type wrote.
    pub fn document(&self) -> Result<String, serde_json::Error> {
        self.document.text()
    }

    /// Bytes the document takes in memory (deflated).
    pub fn held_bytes(&self) -> usize {
        self.document.len()
    }

    /// The status URLs isvc-ingress alone wrote, which a new plan replaces
    /// ([`crate::plan::status::OwnUrls`]).
    pub fn own_urls(&self) -> OwnUrls {
        self.own_urls
    }

    /// The pruned object as a JSON value, for the planner and the status decisions: the
    /// document, with the metadata held as `ObjectMeta` (resourceVersion, generation,
    /// timestamps) put back, and `managedFields` saying which status URLs isvc-ingress wrote, so
    /// that reading the value again gives the same cached object.
    ///
    /// # Errors
    /// Never in practice: the document is JSON this type wrote.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        let mut value: Value = serde_json::from_str(&self.document.text()?)?;
        if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            let held = &self.metadata;
            for (key, field) in [
                (
                    "resourceVersion",
                    serde_json::to_value(&held.resource_version)?,
                ),
                ("generation", serde_json::to_value(held.generation)?),
                (
                    "creationTimestamp",
                    serde_json::to_value(&held.creation_timestamp)?,
                ),
                (
                    "deletionTimestamp",
                    serde_json::to_value(&held.deletion_timestamp)?,
                ),
                ("managedFields", self.own_urls.to_managed_fields().into()),
            ] {
                if !field.is_null() {
                    metadata.insert(key.into(), field);
                }
            }
        }
        Ok(value)
    }
}

impl kube::Resource for CachedInferenceService {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(crate::isvc::KIND)
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("serving.kserve.io")
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1beta1")
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("inferenceservices")
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The top of an ISVC as read off the wire: serde skips every other field without building it.
#[derive(Deserialize)]
struct WireObject {
    #[serde(default)]
    metadata: WireMetadata,
    #[serde(default)]
    spec: Value,
    #[serde(default)]
    status: Value,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireMetadata {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    generation: Option<i64>,
    #[serde(default)]
    creation_timestamp: Option<Time>,
    #[serde(default)]
    deletion_timestamp: Option<Time>,
    #[serde(default)]
    labels: Option<Value>,
    #[serde(default)]
    annotations: Option<Value>,
    #[serde(default)]
    managed_fields: Option<Value>,
}

impl<'de> Deserialize<'de> for CachedInferenceService {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireObject::deserialize(deserializer)?;
        let metadata = wire.metadata;
        let mut document_metadata = Map::new();
        for (key, value) in [
            ("name", metadata.name.clone().map(Value::String)),
            ("namespace", metadata.namespace.clone().map(Value::String)),
            ("uid", metadata.uid.clone().map(Value::String)),
            ("labels", metadata.labels),
            (
                "annotations",
                metadata.annotations.map(without_last_applied),
            ),
        ] {
            if let Some(value) = value {
                document_metadata.insert(key.into(), value);
            }
        }
        let mut document = Map::new();
        document.insert("metadata".into(), Value::Object(document_metadata));
        if !wire.spec.is_null() {
            document.insert("spec".into(), prune_spec(&wire.spec));
        }
        if !wire.status.is_null() {
            document.insert("status".into(), prune_status(&wire.status));
        }
        Ok(Self {
            metadata: ObjectMeta {
                name: metadata.name,
                namespace: metadata.namespace,
                uid: metadata.uid,
                resource_version: metadata.resource_version,
                generation: metadata.generation,
                creation_timestamp: metadata.creation_timestamp,
                deletion_timestamp: metadata.deletion_timestamp,
                ..ObjectMeta::default()
            },
            document: Deflated::new(&Value::Object(document).to_string()),
            own_urls: OwnUrls::from_managed_fields(metadata.managed_fields.as_ref()),
        })
    }
}

fn without_last_applied(annotations: Value) -> Value {
    match annotations {
        Value::Object(mut annotations) => {
            annotations.remove(LAST_APPLIED_ANNOTATION);
            Value::Object(annotations)
        }
        other => other,
    }
}

/// `spec`, cut to what `InferenceService::from_json` reads (crate::isvc `component_spec`): per
/// component (predictor, transformer, explainer) its `name` (the predictor variant),
/// `timeout`, each container's `name` and `ports`, and each model or framework block's
/// `protocolVersion` and `ports` (the block itself stays, even empty, because the readers look
/// at blocks by name). A value of another type than the readers expect is kept as written, so
/// the planner still names it.
fn prune_spec(spec: &Value) -> Value {
    let Some(spec) = spec.as_object() else {
        return spec.clone();
    };
    let mut pruned = Map::new();
    for kind in ComponentKind::ALL {
        if let Some(component) = spec.get(kind.key()) {
            pruned.insert(kind.key().into(), prune_component(component));
        }
    }
    Value::Object(pruned)
}

fn prune_component(component: &Value) -> Value {
    let Some(component) = component.as_object() else {
        return component.clone();
    };
    let mut pruned = Map::new();
    for (key, value) in component {
        match (key.as_str(), value) {
            ("name" | "timeout", _) => {
                pruned.insert(key.clone(), value.clone());
            }
            ("containers", Value::Array(containers)) => {
                let containers = containers
                    .iter()
                    .map(|container| keep_fields(container, &["name", "ports"]))
                    .collect();
                pruned.insert(key.clone(), Value::Array(containers));
            }
            ("containers", _) => {
                pruned.insert(key.clone(), value.clone());
            }
            (_, Value::Object(_)) => {
                pruned.insert(
                    key.clone(),
                    keep_fields(value, &["protocolVersion", "ports"]),
                );
            }
            _ => {}
        }
    }
    Value::Object(pruned)
}

/// `status`, cut to what the status decisions read (crate::plan::status `resolve`,
/// crate::reconcile::decide `status_patch` and `live_readiness`, the planner's
/// `status.deploymentMode`): `url`, `address`, `conditions` (whole: a merge patch replaces the
/// list, so every condition is written back), `deploymentMode`, and per component its `url`,
/// `restUrl` and `grpcUrl`.
fn prune_status(status: &Value) -> Value {
    let Some(status) = status.as_object() else {
        return status.clone();
    };
    let mut pruned = Map::new();
    for (key, value) in status {
        match (key.as_str(), value) {
            ("url" | "address" | "conditions" | "deploymentMode", _) => {
                pruned.insert(key.clone(), value.clone());
            }
            ("components", Value::Object(components)) => {
                let components = components
                    .iter()
                    .map(|(name, component)| {
                        (
                            name.clone(),
                            keep_fields(component, &["url", "restUrl", "grpcUrl"]),
                        )
                    })
                    .collect();
                pruned.insert(key.clone(), Value::Object(components));
            }
            ("components", _) => {
                pruned.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    Value::Object(pruned)
}

/// An object with only `fields` (in their original order); a non-object is kept as written.
fn keep_fields(value: &Value, fields: &[&str]) -> Value {
    match value.as_object() {
        Some(object) => Value::Object(
            object
                .iter()
                .filter(|(key, _)| fields.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        ),
        None => value.clone(),
    }
}

/// JSON text held deflated (raw DEFLATE, `miniz_oxide`) against the preset dictionary
/// [`DICTIONARY`]: a pruned ISVC or route (about 1.1–1.4 KiB of text) is held in 150–220
/// bytes, against about 500 without the dictionary (`cargo bench --bench reconcile_scale`
/// prints the averages). Shape: the text's length (4 bytes, little-endian), then the DEFLATE
/// stream. Inflating one costs a few microseconds, paid once per reconcile of its ISVC; each
/// thread keeps one compressor and one decompressor (their state is tens of kilobytes, too much
/// to build per document).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Deflated(Box<[u8]>);

/// The DEFLATE level, of 10. With the dictionary, 3 holds the synthetic store's documents
/// (`tests/scale_store`) in 216 bytes an ISVC and 145 a route, against 312 and 224 at level 1,
/// for about 12 µs more CPU per document (the dictionary is compressed again for each one;
/// copying a compressor primed with it was not measured); 6 gains 2–3% more.
const DEFLATE_LEVEL: i32 = 3;

/// The preset dictionary of every cached document: the vocabulary of a pruned ISVC and of each
/// route kind isvc-ingress writes (keys in the order `serde_json` writes them, which is sorted;
/// KServe's condition types; the fixed values of the planner's routes; our annotations and
/// labels), with every name left out. DEFLATE copies earlier text by distance (RFC 1951,
/// 3.2.5), so a document compressed after this text refers to it instead of spelling out its
/// keys, as zlib's preset dictionary does (RFC 1950, FDICT). The text is the format of this
/// cache and of this process only: documents are never stored or sent, so changing it needs
/// no migration. The most common fragments come last (shortest distances).
const DICTIONARY: &str = concat!(
    // Knative: VirtualService and its ExternalName Service, DomainMapping.
    r#"{"apiVersion":"serving.knative.dev/v1beta1","kind":"DomainMapping","spec":{"ref":{"apiVersion":"serving.knative.dev/v1","kind":"Service","name":"","namespace":""},"tls":{"secretName":""}}}"#,
    r#"{"apiVersion":"v1","kind":"Service","spec":{"externalName":"knative-local-gateway.istio-system.svc.cluster.local","ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":80}],"sessionAffinity":"None","type":"ExternalName"}}"#,
    r#"{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","spec":{"gateways":["knative-serving/knative-local-gateway","mesh","knative-serving/knative-ingress-gateway"],"hosts":[".svc.cluster.local"],"http":[{"headers":{"request":{"set":{"Host":"-predictor..svc.cluster.local","KServe-Isvc-Name":"","KServe-Isvc-Namespace":""}}},"match":[{"authority":{"regex":"^\\..svc\\.cluster\\.local(?::\\d{1,5})?$"},"gateways":["knative-serving/knative-local-gateway","mesh"]},{"authority":{"regex":"^\\.(?::\\d{1,5})?$"},"gateways":["knative-serving/knative-ingress-gateway"]}],"retries":{},"rewrite":{"authority":""},"route":[{"destination":{"host":"knative-local-gateway.istio-system.svc.cluster.local","port":{"number":80}},"weight":100}],"timeout":""}]}}"#,
    // Gateway API.
    r#"{"apiVersion":"gateway.networking.k8s.io/v1","kind":"HTTPRoute","spec":{"hostnames":[""],"parentRefs":[{"group":"gateway.networking.k8s.io","kind":"Gateway","name":"kserve-ingress-gateway","namespace":"kserve"}],"rules":[{"backendRefs":[{"group":"","kind":"Service","name":"-predictor","namespace":"","port":80,"weight":1}],"filters":[{"requestHeaderModifier":{"set":[{"name":"KServe-Isvc-Name","value":""},{"name":"KServe-Isvc-Namespace","value":""}]},"type":"RequestHeaderModifier"}],"matches":[{"headers":[{"name":"Host","type":"RegularExpression","value":""}],"path":{"type":"RegularExpression","value":"^/.*$"}},{"path":{"type":"PathPrefix","value":"/"}}],"timeouts":{"request":"60s"}}]},"#,
    r#""status":{"parents":[{"conditions":[{"message":"","reason":"Accepted","status":"True","type":"Accepted"},{"message":"","reason":"ResolvedRefs","status":"True","type":"ResolvedRefs"}],"controllerName":"","parentRef":{"group":"gateway.networking.k8s.io","kind":"Gateway","name":"","namespace":""}}]}}"#,
    // Ingress, and the metadata of every route.
    r#"{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"annotations":{"serving.kserve.io/deploymentMode":"Standard"},"labels":{"app.kubernetes.io/managed-by":"isvc-ingress","app.kubernetes.io/part-of":"","isvc-ingress.io/inferenceservice":""},"name":"","namespace":"","ownerReferences":[{"apiVersion":"serving.kserve.io/v1beta1","blockOwnerDeletion":true,"controller":true,"kind":"InferenceService","name":"","uid":""}]},"spec":{"ingressClassName":"istio","rules":[{"host":"-transformer-","http":{"paths":[{"backend":{"service":{"name":"-explainer","port":{"number":80}}},"path":"/","pathType":"Prefix"}]}},{"host":"-predictor-","http":{"paths":[{"backend":{"service":{"name":"-predictor","port":{"number":80}}},"path":"/","pathType":"Prefix"}]}}],"tls":[{"hosts":[],"secretName":""}]}}"#,
    // A pruned ISVC (crate::reconcile::cached::prune_spec, prune_status).
    r#"{"metadata":{"annotations":{"isvc-ingress.io/address":"http://-predictor..svc.cluster.local","isvc-ingress.io/explainer-url":"http://-explainer-","isvc-ingress.io/hosts":"","isvc-ingress.io/plan-hash":"","isvc-ingress.io/predictor-url":"http://-predictor-","isvc-ingress.io/route":"HTTPRoute","isvc-ingress.io/route-kind":"VirtualService","isvc-ingress.io/transformer-url":"http://-transformer-","isvc-ingress.io/url":"http://","serving.kserve.io/deploymentMode":"Knative"},"labels":{"app.kubernetes.io/part-of":""},"name":"","namespace":"","uid":""},"#,
    r#""spec":{"explainer":{"containers":[{"name":"kserve-container","ports":[{"containerPort":8080,"name":"h2c","protocol":"TCP"}]}]},"predictor":{"model":{"protocolVersion":"v2"},"timeout":60},"transformer":{"containers":[{"name":"kserve-container"}]}},"#,
    r#""status":{"address":{"url":"http://-predictor..svc.cluster.local"},"components":{"explainer":{"restUrl":"http://-explainer-","url":"http://-explainer-"},"predictor":{"grpcUrl":"","restUrl":"http://-predictor-","url":"http://-predictor-"},"transformer":{"restUrl":"http://-transformer-","url":"http://-transformer-"}},"#,
    r#""conditions":[{"lastTransitionTime":"","message":"","reason":"","severity":"Info","status":"False","type":"Stopped"},{"lastTransitionTime":"","status":"True","type":"PredictorReady"},{"lastTransitionTime":"","status":"True","type":"IngressReady"},{"lastTransitionTime":"","status":"True","type":"LatestDeploymentReady"},{"lastTransitionTime":"","status":"True","type":"Ready"}],"deploymentMode":"Standard","url":"http://"}}"#,
);

thread_local! {
    static COMPRESSOR: std::cell::RefCell<miniz_oxide::deflate::core::CompressorOxide> =
        std::cell::RefCell::new(miniz_oxide::deflate::core::CompressorOxide::new(
            // Window bits 0: a raw DEFLATE stream, without the zlib header and checksum.
            miniz_oxide::deflate::core::create_comp_flags_from_zip_params(DEFLATE_LEVEL, 0, 0),
        ));
    static DECOMPRESSOR: std::cell::RefCell<Box<miniz_oxide::inflate::core::DecompressorOxide>> =
        std::cell::RefCell::new(Box::default());
}

impl Deflated {
    fn new(text: &str) -> Self {
        use miniz_oxide::deflate::core::{TDEFLFlush, TDEFLStatus, compress};
        let length = u32::try_from(text.len()).unwrap_or(u32::MAX);
        let mut output = length.to_le_bytes().to_vec();
        output.resize(4 + text.len() / 2 + 64, 0);
        COMPRESSOR.with_borrow_mut(|compressor| {
            compressor.reset();
            // The dictionary first, flushed to a block boundary; its output is dropped, and
            // the document's blocks refer back into it. The buffer is large enough for the
            // whole flush (DEFLATE never grows text by more than 5 bytes per 64 KiB block).
            let mut dropped = vec![0; DICTIONARY.len() + 64];
            let _ = compress(
                compressor,
                DICTIONARY.as_bytes(),
                &mut dropped,
                TDEFLFlush::Sync,
            );
            let (mut input, mut written) = (text.as_bytes(), 4);
            loop {
                let (status, read, wrote) = compress(
                    compressor,
                    input,
                    &mut output[written..],
                    TDEFLFlush::Finish,
                );
                written += wrote;
                input = input.get(read..).unwrap_or_default();
                match status {
                    TDEFLStatus::Okay => {
                        let grown = output.len() * 2;
                        output.resize(grown, 0);
                    }
                    // Done, or an error miniz_oxide cannot report for in-memory input; a
                    // truncated stream fails to inflate and is reported there.
                    _ => break,
                }
            }
            output.truncate(written);
        });
        Self(output.into_boxed_slice())
    }

    fn text(&self) -> Result<String, serde_json::Error> {
        use miniz_oxide::inflate::TINFLStatus;
        use miniz_oxide::inflate::core::{decompress, inflate_flags};
        use serde::de::Error as _;
        let broken = |why: &str| serde_json::Error::custom(format!("a cached document {why}"));
        let (length, stream) = self
            .0
            .split_at_checked(4)
            .ok_or_else(|| broken("is empty"))?;
        let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
        // The dictionary, then room for the text: the stream copies from both as earlier output.
        let mut text = Vec::with_capacity(DICTIONARY.len() + length);
        text.extend_from_slice(DICTIONARY.as_bytes());
        text.resize(DICTIONARY.len() + length, 0);
        let (status, written) = DECOMPRESSOR.with_borrow_mut(|decompressor| {
            decompressor.init();
            let (status, _, written) = decompress(
                decompressor,
                stream,
                &mut text,
                DICTIONARY.len(),
                inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
            );
            (status, written)
        });
        if status != TINFLStatus::Done || written != length {
            return Err(broken(&format!("does not inflate ({status:?})")));
        }
        String::from_utf8(text.split_off(DICTIONARY.len())).map_err(|_| broken("is not UTF-8"))
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// A live route as the route cache keeps it: its kind, name and uid (a delete is
/// preconditioned on the uid), the uid of its controller owner (the reconciler deletes only
/// routes its ISVC controls), the owner label it is filed under, and the fields the reconcile
/// compares or reads, as compact JSON ([`prune_route`]).
#[derive(Debug)]
pub struct CachedRoute {
    kind: ManagedKind,
    name: Box<str>,
    uid: Option<Box<str>>,
    controller_uid: Option<Box<str>>,
    document: Deflated,
    /// Fingerprint of the last desired route found contained in this live copy (0: none), so
    /// a re-plan that wants the same route again skips inflating and parsing the document. A
    /// new live copy (a watch event) is a new `CachedRoute`, so the memo never outlives it.
    holds: std::sync::atomic::AtomicU64,
}

impl Clone for CachedRoute {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller_uid: self.controller_uid.clone(),
            document: self.document.clone(),
            holds: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl PartialEq for CachedRoute {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.kind,
            &self.name,
            &self.uid,
            &self.controller_uid,
            &self.document,
        ) == (
            &other.kind,
            &other.name,
            &other.uid,
            &other.controller_uid,
            &other.document,
        )
    }
}

impl Eq for CachedRoute {}

impl CachedRoute {
    /// Reads a live route of `kind` (as its watcher delivers it).
    pub fn new(kind: ManagedKind, object: &DynamicObject) -> Self {
        let value = serde_json::to_value(object).unwrap_or(Value::Null);
        let metadata = &object.metadata;
        Self {
            kind,
            name: metadata.name.clone().unwrap_or_default().into_boxed_str(),
            uid: metadata.uid.clone().map(String::into_boxed_str),
            controller_uid: metadata
                .owner_references
                .iter()
                .flatten()
                .find(|owner| owner.controller == Some(true))
                .map(|owner| owner.uid.clone().into_boxed_str()),
            document: Deflated::new(&prune_route(kind, &value).to_string()),
            holds: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether this live copy already holds `desired` (crate::field_diff `is_subset`): a route
    /// that matches what we would apply is not written again. Remembers the last desired route
    /// it held, by a 64-bit SipHash fingerprint of its JSON, so asking again is a hash, not a
    /// parse.
    pub fn holds(&self, desired: &Value) -> bool {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::Ordering;
        let fingerprint = serde_json::to_vec(desired).map(|bytes| {
            let mut hasher = fingerprint_keys().build_hasher();
            hasher.write(&bytes);
            hasher.finish().max(1)
        });
        if let Ok(fingerprint) = fingerprint
            && self.holds.load(Ordering::Relaxed) == fingerprint
        {
            return true;
        }
        let held = self
            .to_value()
            .is_ok_and(|live| crate::field_diff::is_subset(desired, &live));
        if let (true, Ok(fingerprint)) = (held, fingerprint) {
            self.holds.store(fingerprint, Ordering::Relaxed);
        }
        held
    }

    pub fn kind(&self) -> ManagedKind {
        self.kind
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `metadata.uid`, None for an object the API server has not stored.
    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    /// The uid of the ownerReference marked `controller: true`, if any.
    pub fn controller_uid(&self) -> Option<&str> {
        self.controller_uid.as_deref()
    }

    /// The compared fields as JSON text.
    ///
    /// # Errors
    /// Never in practice: the document is deflated JSON this type wrote.
    pub fn document(&self) -> Result<String, serde_json::Error> {
        self.document.text()
    }

    /// Bytes the document takes in memory (deflated).
    pub fn held_bytes(&self) -> usize {
        self.document.len()
    }

    /// The compared fields as a JSON value.
    ///
    /// # Errors
    /// Never in practice: the document is deflated JSON this type wrote.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.document.text()?)
    }
}

/// The process's SipHash keys for route fingerprints (random per process, like `HashMap`'s).
fn fingerprint_keys() -> &'static std::collections::hash_map::RandomState {
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(std::collections::hash_map::RandomState::new)
}

/// The metadata fields the API server sets and the planner never writes: a route's desired
/// object holds none of them, so the subset comparison (crate::field_diff `is_subset`) never
/// reads them.
const SERVER_SET_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
];

/// A live route, cut to what the reconcile reads: everything the desired route can hold
/// (`apiVersion`, `kind`, `metadata` without the fields the API server sets and without
/// kubectl's last-applied copy, `spec`), and the status of an HTTPRoute (its parents'
/// conditions decide `IngressReady`; crate::reconcile::decide `httproute_readiness`). Other
/// kinds' status (an Ingress's load balancer) is never read. Pure.
///
/// `apiVersion` and `kind` are always those of `kind`: the items of a list of a built-in kind
/// (Ingress, Service) come without them, and a planned route, which has them, would never be
/// contained in such a copy (every restart re-applied each Ingress and Service; found with
/// 10,000 ISVCs on a real API server).
pub fn prune_route(kind: ManagedKind, object: &Value) -> Value {
    let Some(object) = object.as_object() else {
        return object.clone();
    };
    let mut pruned = Map::new();
    pruned.insert("apiVersion".into(), Value::String(kind.api_version()));
    pruned.insert("kind".into(), Value::String(kind.kind().to_string()));
    for (key, value) in object {
        match key.as_str() {
            "metadata" => {
                let metadata = match value {
                    Value::Object(metadata) => Value::Object(
                        metadata
                            .iter()
                            .filter(|(field, _)| !SERVER_SET_METADATA.contains(&field.as_str()))
                            .map(|(field, value)| {
                                let value = if field == "annotations" {
                                    without_last_applied(value.clone())
                                } else {
                                    value.clone()
                                };
                                (field.clone(), value)
                            })
                            .collect(),
                    ),
                    other => other.clone(),
                };
                pruned.insert(key.clone(), metadata);
            }
            "apiVersion" | "kind" => {}
            "status" if kind != ManagedKind::HttpRoute => {}
            _ => {
                pruned.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;
    use serde_json::json;

    #[test]
    fn an_isvc_keeps_its_identity_and_loses_what_routing_never_reads() {
        let cached = CachedInferenceService::from_value(json!({
            "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {
                "name": "m", "namespace": "ns", "uid": "u-1", "resourceVersion": "42",
                "generation": 3, "creationTimestamp": "2024-06-01T00:00:00Z",
                "labels": {"team": "a"},
                "annotations": {"serving.kserve.io/deploymentMode": "Standard",
                                LAST_APPLIED_ANNOTATION: "{\"a\": 1}"},
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
                "finalizers": ["inferenceservice.finalizers"],
            },
            "spec": {
                "predictor": {
                    "minReplicas": 1, "timeout": 30, "name": "v1",
                    "sklearn": {"storageUri": "gs://x", "protocolVersion": "v2",
                                "resources": {"limits": {"cpu": "1"}}},
                    "containers": [{"name": "kserve-container", "image": "i",
                                    "env": [{"name": "A", "value": "B"}],
                                    "ports": [{"containerPort": 8080}]}],
                },
                "transformer": "not an object",
            },
            "status": {
                "url": "http://m.ns.example.com", "observedGeneration": 3,
                "address": {"url": "http://m.ns.svc.cluster.local"},
                "components": {"predictor": {"url": "http://p", "latestCreatedRevision": "r",
                                             "traffic": [{"percent": 100}]}},
                "conditions": [{"type": "Ready", "status": "True"}],
                "modelStatus": {"transitionStatus": "UpToDate"},
                "deploymentMode": "Standard",
            },
        }))
        .unwrap();
        assert_eq!(cached.meta().name.as_deref(), Some("m"));
        assert_eq!(cached.meta().namespace.as_deref(), Some("ns"));
        assert_eq!(cached.meta().uid.as_deref(), Some("u-1"));
        assert_eq!(cached.meta().resource_version.as_deref(), Some("42"));
        assert_eq!(cached.meta().generation, Some(3));
        assert!(cached.meta().creation_timestamp.is_some());
        assert!(cached.meta().managed_fields.is_none());
        assert!(
            !cached.document().unwrap().contains("resourceVersion"),
            "held once"
        );
        let again = CachedInferenceService::from_value(cached.to_value().unwrap()).unwrap();
        assert_eq!(
            again, cached,
            "reading the value again gives the same object"
        );
        assert_eq!(
            cached.to_value().unwrap(),
            json!({
                "metadata": {
                    "name": "m", "namespace": "ns", "uid": "u-1", "labels": {"team": "a"},
                    "annotations": {"serving.kserve.io/deploymentMode": "Standard"},
                    "resourceVersion": "42", "generation": 3,
                    "creationTimestamp": "2024-06-01T00:00:00Z",
                },
                "spec": {
                    "predictor": {
                        "timeout": 30, "name": "v1",
                        "sklearn": {"protocolVersion": "v2"},
                        "containers": [{"name": "kserve-container",
                                        "ports": [{"containerPort": 8080}]}],
                    },
                    "transformer": "not an object",
                },
                "status": {
                    "url": "http://m.ns.example.com",
                    "address": {"url": "http://m.ns.svc.cluster.local"},
                    "components": {"predictor": {"url": "http://p"}},
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "deploymentMode": "Standard",
                },
            })
        );
    }

    #[test]
    fn the_cached_isvc_is_the_kserve_resource() {
        assert_eq!(
            CachedInferenceService::api_version(&()),
            "serving.kserve.io/v1beta1"
        );
        assert_eq!(CachedInferenceService::kind(&()), "InferenceService");
        assert_eq!(
            CachedInferenceService::url_path(&(), Some("ns")),
            "/apis/serving.kserve.io/v1beta1/namespaces/ns/inferenceservices"
        );
    }

    #[test]
    fn a_wrongly_typed_server_field_is_an_error_not_a_default() {
        let error = CachedInferenceService::from_value(json!({"metadata": {"name": 7}}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("invalid type"), "{error}");
    }

    #[test]
    fn a_route_keeps_what_is_compared_and_its_owner() {
        let live: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {
                "name": "m", "namespace": "ns", "uid": "r-1", "resourceVersion": "7",
                "generation": 1, "creationTimestamp": "2024-06-01T00:00:00Z",
                "labels": {"app.kubernetes.io/managed-by": "isvc-ingress"},
                "annotations": {LAST_APPLIED_ANNOTATION: "{}", "a": "b"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "X", "name": "x", "uid": "other"},
                    {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                     "name": "m", "uid": "isvc-uid", "controller": true}],
                "managedFields": [{"manager": "isvc-ingress"}],
            },
            "spec": {"rules": [{"host": "m.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}},
        }))
        .unwrap();
        let cached = CachedRoute::new(ManagedKind::Ingress, &live);
        assert_eq!(cached.kind(), ManagedKind::Ingress);
        assert_eq!(cached.name(), "m");
        assert_eq!(cached.uid(), Some("r-1"));
        assert_eq!(cached.controller_uid(), Some("isvc-uid"));
        assert_eq!(
            cached.to_value().unwrap(),
            json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {
                    "name": "m", "namespace": "ns",
                    "labels": {"app.kubernetes.io/managed-by": "isvc-ingress"},
                    "annotations": {"a": "b"},
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "X", "name": "x", "uid": "other"},
                        {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                         "name": "m", "uid": "isvc-uid", "controller": true}],
                },
                "spec": {"rules": [{"host": "m.example.com"}]},
            })
        );
    }

    #[test]
    fn a_listed_route_without_type_fields_gets_those_of_its_kind() {
        // What the API server lists for Ingresses and Services: items without type fields.
        for (kind, api_version, kind_name) in [
            (ManagedKind::Ingress, "networking.k8s.io/v1", "Ingress"),
            (ManagedKind::Service, "v1", "Service"),
        ] {
            let listed: DynamicObject =
                serde_json::from_value(json!({"metadata": {"name": "m", "namespace": "ns"}}))
                    .unwrap();
            let value = CachedRoute::new(kind, &listed).to_value().unwrap();
            assert_eq!(value["apiVersion"], api_version, "{value}");
            assert_eq!(value["kind"], kind_name, "{value}");
        }
    }

    #[test]
    fn a_deflated_document_inflates_to_its_text() {
        for text in ["", "{}", &"{\"a\":\"\u{e9}\"}".repeat(500)] {
            let deflated = Deflated::new(text);
            assert_eq!(deflated.text().unwrap(), text);
        }
        let long = "{\"spec\":1}".repeat(400);
        assert!(Deflated::new(&long).len() < long.len() / 10);
        // A damaged stream is an error, never a wrong document.
        let mut damaged = Deflated::new(&long);
        damaged.0[3] ^= 1;
        assert!(damaged.text().is_err());
        let mut truncated = Deflated::new(&long).0.into_vec();
        truncated.truncate(truncated.len() / 2);
        assert!(Deflated(truncated.into_boxed_slice()).text().is_err());
    }

    #[test]
    fn the_dictionary_holds_a_routes_vocabulary() {
        // An Ingress the planner writes, with names the dictionary cannot know.
        let text = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {
                "annotations": {"serving.kserve.io/deploymentMode": "Standard"},
                "labels": {"app.kubernetes.io/managed-by": "isvc-ingress",
                           "isvc-ingress.io/inferenceservice": "fraud-scorer"},
                "name": "fraud-scorer", "namespace": "payments",
                "ownerReferences": [{"apiVersion": "serving.kserve.io/v1beta1",
                    "blockOwnerDeletion": true, "controller": true,
                    "kind": "InferenceService", "name": "fraud-scorer",
                    "uid": "0b6e2d1c-7a4f-4e59-9d1a-3c2b8e7f6a51"}],
            },
            "spec": {"ingressClassName": "istio", "rules": [{
                "host": "fraud-scorer-payments.models.internal",
                "http": {"paths": [{"backend": {"service": {"name": "fraud-scorer-predictor",
                    "port": {"number": 80}}}, "path": "/", "pathType": "Prefix"}]},
            }]},
        })
        .to_string();
        let held = Deflated::new(&text);
        assert_eq!(held.text().unwrap(), text);
        // Without the dictionary DEFLATE holds such a document in about 45% of its text.
        assert!(
            held.len() * 4 < text.len(),
            "{} bytes held for {} of text",
            held.len(),
            text.len()
        );
    }

    #[test]
    fn a_route_remembers_the_desired_route_it_held_and_nothing_else() {
        let live: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "m", "namespace": "ns", "uid": "u"},
            "spec": {"type": "ExternalName", "externalName": "a.example.com"},
        }))
        .unwrap();
        let cached = CachedRoute::new(ManagedKind::Service, &live);
        let held = json!({"apiVersion": "v1", "kind": "Service",
                          "metadata": {"name": "m", "namespace": "ns"},
                          "spec": {"externalName": "a.example.com"}});
        let moved = json!({"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": "m", "namespace": "ns"},
                           "spec": {"externalName": "b.example.com"}});
        assert!(cached.holds(&held));
        assert!(cached.holds(&held), "asked again");
        assert!(!cached.holds(&moved));
        assert!(!cached.holds(&moved), "a miss is not remembered as a hit");
        assert!(cached.holds(&held));
        assert!(
            !cached.clone().holds(&moved),
            "a clone starts without the memo"
        );
    }

    #[test]
    fn an_httproute_keeps_its_status() {
        let status = json!({"parents": [{"conditions": [{"type": "Accepted", "status": "True"}]}]});
        let live = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                          "metadata": {"name": "m"}, "status": status});
        assert_eq!(prune_route(ManagedKind::HttpRoute, &live)["status"], status);
        assert!(
            prune_route(ManagedKind::Ingress, &live)
                .get("status")
                .is_none()
        );
    }
}
