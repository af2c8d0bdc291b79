//! The part of a `serving.kserve.io/v1beta1` InferenceService that routing depends on, read
//! leniently from JSON: unknown fields are ignored (the full object is never round-tripped, so
//! nothing the user wrote can be lost), and a field of the wrong type is a violation that names it.

use crate::violation::Violation;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const API_VERSION: &str = "serving.kserve.io/v1beta1";
pub const KIND: &str = "InferenceService";

/// gRPC port KServe's runtimes listen on when a component says `protocolVersion: grpc-v2` without
/// naming its port.
pub const DEFAULT_GRPC_PORT: u16 = 8081;
/// Container port KServe assumes for a component that declares none (reference §6.3).
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// The three components of an ISVC, in the order KServe reconciles them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ComponentKind {
    Predictor,
    Transformer,
    Explainer,
}

impl ComponentKind {
    pub const ALL: [Self; 3] = [Self::Predictor, Self::Transformer, Self::Explainer];

    /// The key in `spec` and in `status.components`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Predictor => "predictor",
            Self::Transformer => "transformer",
            Self::Explainer => "explainer",
        }
    }

    /// Capitalised, as KServe's condition messages say it.
    pub fn title(self) -> &'static str {
        match self {
            Self::Predictor => "Predictor",
            Self::Transformer => "Transformer",
            Self::Explainer => "Explainer",
        }
    }
}

/// What routing needs to know about one component's spec.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// `spec.<component>.timeout`, seconds.
    pub timeout_seconds: Option<i64>,
    /// The ports of the container KServe builds the component's Service from, in the order
    /// declared: the first model/framework block that lists `ports` (KServe puts that container
    /// first), else the container named `transformer-container`, else the first container.
    /// Empty when the ISVC declares none (the ServingRuntime's then apply).
    pub ports: Vec<ContainerPort>,
    /// A block says `protocolVersion: grpc-v2`: without declared ports, KServe's runtimes
    /// then listen for gRPC on `h2c` [`DEFAULT_GRPC_PORT`].
    pub grpc_v2: bool,
}

/// One declared container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    /// `name`, empty when unnamed.
    pub name: String,
    /// `containerPort`.
    pub number: u16,
}

/// The container KServe's service reconciler builds the Service from
/// (`TransformerContainerName`), when a component has several.
pub const TRANSFORMER_CONTAINER_NAME: &str = "transformer-container";

/// One component present in the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub kind: ComponentKind,
    /// The Kubernetes Service (and Knative Service) KServe creates for it.
    pub service_name: String,
    pub spec: ComponentSpec,
}

/// The routing-relevant view of an InferenceService.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceService {
    pub name: String,
    pub namespace: String,
    pub uid: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Present components, predictor first.
    pub components: Vec<Component>,
    /// `status.deploymentMode`, as written (not normalised).
    pub status_deployment_mode: Option<String>,
}

impl InferenceService {
    pub fn component(&self, kind: ComponentKind) -> Option<&Component> {
        self.components
            .iter()
            .find(|component| component.kind == kind)
    }

    /// The component that receives the traffic of the top-level host: the transformer when there
    /// is one, else the predictor.
    pub fn entry_component(&self) -> &Component {
        self.component(ComponentKind::Transformer)
            .unwrap_or(&self.components[0])
    }

    /// Reads an ISVC. `default_namespace` is used when `metadata.namespace` is absent (the
    /// admission request's namespace, or `default` for files, as kubectl would).
    pub fn from_json(object: &Value, default_namespace: &str) -> Result<Self, Vec<Violation>> {
        let mut violations = Vec::new();
        let metadata = object.get("metadata").unwrap_or(&Value::Null);
        let name = match metadata.get("name") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                violations.push(Violation::new("metadata.name", "is required"));
                String::new()
            }
            Some(other) => {
                violations.push(Violation::new(
                    "metadata.name",
                    format!("must be a string, found {other}"),
                ));
                String::new()
            }
        };
        let namespace = match metadata.get("namespace") {
            Some(Value::String(namespace)) if !namespace.is_empty() => namespace.clone(),
            None | Some(Value::Null) => default_namespace.to_string(),
            Some(Value::String(_)) => default_namespace.to_string(),
            Some(other) => {
                violations.push(Violation::new(
                    "metadata.namespace",
                    format!("must be a string, found {other}"),
                ));
                String::new()
            }
        };
        let uid = metadata
            .get("uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        let labels = string_map(metadata.get("labels"), "metadata.labels", &mut violations);
        let annotations = string_map(
            metadata.get("annotations"),
            "metadata.annotations",
            &mut violations,
        );
        let spec = object.get("spec").unwrap_or(&Value::Null);
        let sources =
            ComponentKind::ALL.map(|kind| spec.get(kind.key()).map(ComponentSource::Json));
        let status_deployment_mode = object
            .get("status")
            .and_then(|status| status.get("deploymentMode"))
            .and_then(Value::as_str)
            .filter(|mode| !mode.is_empty())
            .map(str::to_string);
        let metadata = Metadata {
            name,
            namespace,
            uid,
            labels,
            annotations,
        };
        Self::assemble(metadata, sources, status_deployment_mode, violations)
    }

    /// Reads an ISVC from JSON text, for the webhook's hot path: a typed read that skips every
    /// field routing does not use (managedFields, most of the spec). When the typed read fails
    /// (a wrong type somewhere), [`InferenceService::from_json`] reads the text again to name
    /// the field; both give the same result for any object the typed read accepts.
    pub fn from_json_text(
        text: &str,
        default_namespace: &str,
    ) -> Result<(Self, ObjectFacts), ReadError> {
        match serde_json::from_str::<TypedObject>(text) {
            Ok(object) => Self::from_typed(object, default_namespace),
            Err(_) => Self::from_json_text_precisely(text, default_namespace),
        }
    }

    /// The routing view from an object the typed reader already read (as part of a larger
    /// document, such as an AdmissionReview, so the object is parsed only once).
    pub fn from_typed(
        object: TypedObject,
        default_namespace: &str,
    ) -> Result<(Self, ObjectFacts), ReadError> {
        let document = object.0;
        let metadata = document.metadata.unwrap_or_default();
        let facts = ObjectFacts {
            has_annotations: metadata.annotations.is_some(),
            being_deleted: metadata.deletion_timestamp.is_some(),
        };
        let mut violations = Vec::new();
        let name = metadata
            .name
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| {
                violations.push(Violation::new("metadata.name", "is required"));
                String::new()
            });
        let metadata_view = Metadata {
            name,
            namespace: metadata
                .namespace
                .filter(|namespace| !namespace.is_empty())
                .unwrap_or_else(|| default_namespace.to_string()),
            uid: metadata.uid,
            labels: metadata.labels.unwrap_or_default(),
            annotations: metadata.annotations.unwrap_or_default(),
        };
        let spec = document.spec.unwrap_or_default();
        let sources = [&spec.predictor, &spec.transformer, &spec.explainer]
            .map(|component| component.as_ref().map(ComponentSource::Typed));
        let status_deployment_mode = document
            .status
            .and_then(|status| status.deployment_mode)
            .filter(|mode| !mode.is_empty());
        Self::assemble(metadata_view, sources, status_deployment_mode, violations)
            .map(|isvc| (isvc, facts))
            .map_err(|violations| ReadError::Invalid { violations, facts })
    }

    fn from_json_text_precisely(
        text: &str,
        default_namespace: &str,
    ) -> Result<(Self, ObjectFacts), ReadError> {
        let object: Value =
            serde_json::from_str(text).map_err(|error| ReadError::NotJson(error.to_string()))?;
        if !object.is_object() {
            return Err(ReadError::NotAnObject);
        }
        let metadata = object.get("metadata");
        let facts = ObjectFacts {
            has_annotations: metadata
                .and_then(|metadata| metadata.get("annotations"))
                .is_some_and(|annotations| !annotations.is_null()),
            being_deleted: metadata
                .and_then(|metadata| metadata.get("deletionTimestamp"))
                .is_some_and(|timestamp| !timestamp.is_null()),
        };
        Self::from_json(&object, default_namespace)
            .map(|isvc| (isvc, facts))
            .map_err(|violations| ReadError::Invalid { violations, facts })
    }

    /// The common tail of both readers: components, service names, and the verdict.
    fn assemble(
        metadata: Metadata,
        sources: [Option<ComponentSource<'_>>; 3],
        status_deployment_mode: Option<String>,
        mut violations: Vec<Violation>,
    ) -> Result<Self, Vec<Violation>> {
        let Metadata {
            name,
            namespace,
            uid,
            labels,
            annotations,
        } = metadata;
        let predictor_variant = sources[0]
            .as_ref()
            .and_then(ComponentSource::variant)
            .filter(|variant| !variant.is_empty())
            .map(str::to_string);
        let mut components = Vec::new();
        for (kind, source) in ComponentKind::ALL.into_iter().zip(sources) {
            let Some(component) = source.filter(ComponentSource::is_present) else {
                continue;
            };
            let field = format!("spec.{}", kind.key());
            if !component.is_object() {
                violations.push(Violation::new(field, "must be an object"));
                continue;
            }
            let service_name = match (kind, &predictor_variant) {
                (ComponentKind::Predictor, Some(variant)) => format!("{name}-{variant}-predictor"),
                _ => format!("{name}-{}", kind.key()),
            };
            components.push(Component {
                kind,
                service_name,
                spec: component.spec(&field, &mut violations),
            });
        }
        if components.first().map(|component| component.kind) != Some(ComponentKind::Predictor) {
            violations.push(Violation::new("spec.predictor", "is required"));
        }
        if violations.is_empty() {
            Ok(Self {
                name,
                namespace,
                uid,
                labels,
                annotations,
                components,
                status_deployment_mode,
            })
        } else {
            Err(violations)
        }
    }
}

/// A component as either reader holds it.
enum ComponentSource<'a> {
    Json(&'a Value),
    Typed(&'a ComponentDocument),
}

impl ComponentSource<'_> {
    fn is_present(&self) -> bool {
        match self {
            Self::Json(value) => !value.is_null(),
            Self::Typed(_) => true,
        }
    }

    fn is_object(&self) -> bool {
        match self {
            Self::Json(value) => value.is_object(),
            Self::Typed(_) => true,
        }
    }

    /// `predictor.name`, the predictor variant of KServe master.
    fn variant(&self) -> Option<&str> {
        match self {
            Self::Json(value) => value.get("name").and_then(Value::as_str),
            Self::Typed(component) => component.variant.as_deref(),
        }
    }

    fn spec(&self, field: &str, violations: &mut Vec<Violation>) -> ComponentSpec {
        match self {
            Self::Json(value) => component_spec(value, field, violations),
            Self::Typed(component) => typed_component_spec(component, field, violations),
        }
    }
}

/// Facts about the object itself that admission needs beside the routing view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectFacts {
    /// `metadata.annotations` is a map (not absent or null): patches add keys to it one by one.
    pub has_annotations: bool,
    /// `metadata.deletionTimestamp` is set.
    pub being_deleted: bool,
}

/// Why [`InferenceService::from_json_text`] could not give a routing view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    NotJson(String),
    NotAnObject,
    /// An object, but not a readable ISVC; `facts` still say whether it is being deleted.
    Invalid {
        violations: Vec<Violation>,
        facts: ObjectFacts,
    },
}

struct Metadata {
    name: String,
    namespace: String,
    uid: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// An ISVC read by the typed reader: only the fields routing reads (serde skips the others
/// without building them). Every field is optional, so any Kubernetes object reads as one; a
/// mistyped field fails the read, and the precise reader names it.
pub struct TypedObject(Document);

impl<'de> Deserialize<'de> for TypedObject {
    /// Objects only: serde's derived struct readers also accept arrays (the tuple form), which
    /// would read `[]` as an empty ISVC instead of "not a JSON object".
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
            type Value = TypedObject;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<TypedObject, A::Error> {
                Document::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(TypedObject)
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// The typed shape of the fields routing reads; serde skips all others without building them.
#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    metadata: Option<MetadataDocument>,
    #[serde(default)]
    spec: Option<SpecDocument>,
    #[serde(default)]
    status: Option<StatusDocument>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MetadataDocument {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    deletion_timestamp: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
struct SpecDocument {
    #[serde(default)]
    predictor: Option<ComponentDocument>,
    #[serde(default)]
    transformer: Option<ComponentDocument>,
    #[serde(default)]
    explainer: Option<ComponentDocument>,
}

/// A component as the typed reader sees it: only what [`component_spec`] reads, without
/// building the rest (resources, env, args...). Stricter than the JSON reader on types (a
/// mistyped port fails the typed read, and the precise reader then takes over), never
/// different on what it accepts.
#[derive(Default)]
struct ComponentDocument {
    timeout: Option<Value>,
    variant: Option<String>,
    containers: Vec<ContainerDocument>,
    /// Object-valued fields (model and framework blocks), by name: the JSON reader visits
    /// them in key order.
    blocks: BTreeMap<String, BlockDocument>,
}

#[derive(Deserialize, Default)]
struct BlockDocument {
    #[serde(default, rename = "protocolVersion")]
    protocol_version: Option<Value>,
    #[serde(default)]
    ports: Option<Vec<PortDocument>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortDocument {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    container_port: Option<u64>,
}

#[derive(Deserialize)]
struct ContainerDocument {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    ports: Option<Vec<PortDocument>>,
}

impl BlockDocument {
    /// The same facts from an already parsed value (a `timeout` or `name` that is an object,
    /// which the JSON reader also visits as a block).
    fn from_value(value: &Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(value.clone())
    }
}

impl<'de> Deserialize<'de> for ComponentDocument {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ComponentVisitor;
        impl<'de> serde::de::Visitor<'de> for ComponentVisitor {
            type Value = ComponentDocument;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a component object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ComponentDocument, A::Error> {
                let mut component = ComponentDocument::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "timeout" | "name" => {
                            let value: Value = map.next_value()?;
                            if value.is_object() {
                                let block = BlockDocument::from_value(&value)
                                    .map_err(serde::de::Error::custom)?;
                                component.blocks.insert(key.clone(), block);
                            }
                            if key == "timeout" {
                                component.timeout = Some(value);
                            } else {
                                component.variant = value.as_str().map(str::to_string);
                            }
                        }
                        "containers" => {
                            let containers: Option<Vec<ContainerDocument>> = map.next_value()?;
                            component.containers = containers.unwrap_or_default();
                        }
                        _ => {
                            if let Some(block) = map.next_value::<MaybeBlock>()?.0 {
                                component.blocks.insert(key, block);
                            }
                        }
                    }
                }
                Ok(component)
            }
        }
        deserializer.deserialize_map(ComponentVisitor)
    }
}

/// Any JSON value: an object is read as a block, anything else is skipped unbuilt.
struct MaybeBlock(Option<BlockDocument>);

impl<'de> Deserialize<'de> for MaybeBlock {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnyVisitor;
        impl<'de> serde::de::Visitor<'de> for AnyVisitor {
            type Value = MaybeBlock;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("any JSON value")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<MaybeBlock, A::Error> {
                BlockDocument::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|block| MaybeBlock(Some(block)))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MaybeBlock, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeBlock(None))
            }

            fn visit_bool<E>(self, _: bool) -> Result<MaybeBlock, E> {
                Ok(MaybeBlock(None))
            }

            fn visit_i64<E>(self, _: i64) -> Result<MaybeBlock, E> {
                Ok(MaybeBlock(None))
            }

            fn visit_u64<E>(self, _: u64) -> Result<MaybeBlock, E> {
                Ok(MaybeBlock(None))
            }

            fn visit_f64<E>(self, _: f64) -> Result<MaybeBlock, E> {
                Ok(MaybeBlock(None))
            }

            fn visit_str<E>(self, _: &str) -> Result<MaybeBlock, E> {
                Ok(MaybeBlock(None))
            }

            fn visit_unit<E>(self) -> Result<MaybeBlock, E> {
                Ok(MaybeBlock(None))
            }
        }
        deserializer.deserialize_any(AnyVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusDocument {
    #[serde(default)]
    deployment_mode: Option<String>,
}

fn string_map(
    value: Option<&Value>,
    field: &str,
    violations: &mut Vec<Violation>,
) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(object)) => {
            for (key, value) in object {
                match value {
                    Value::String(text) => {
                        map.insert(key.clone(), text.clone());
                    }
                    other => violations.push(Violation::new(
                        format!("{field}[{key}]"),
                        format!("must be a string, found {other}"),
                    )),
                }
            }
        }
        Some(other) => violations.push(Violation::new(
            field,
            format!("must be a map of strings, found {other}"),
        )),
    }
    map
}

/// Finds the timeout and the ports of a component. Ports live in the model/framework block
/// (`model.ports`, `sklearn.ports`, ...) or in `containers[*].ports` (custom containers,
/// transformers); see [`ComponentSpec::ports`] for which ones KServe's Service uses.
fn component_spec(
    component: &Value,
    field: &str,
    violations: &mut Vec<Violation>,
) -> ComponentSpec {
    let mut grpc_v2 = false;
    let mut block_ports = None;
    if let Some(object) = component.as_object() {
        for block in object.values().filter(|value| value.is_object()) {
            if block.get("protocolVersion").and_then(Value::as_str) == Some("grpc-v2") {
                grpc_v2 = true;
            }
            let ports = block
                .get("ports")
                .and_then(Value::as_array)
                .filter(|ports| !ports.is_empty());
            block_ports = block_ports.or(ports);
        }
    }
    let container_ports = || {
        let containers = component.get("containers").and_then(Value::as_array)?;
        containers
            .iter()
            .find(|container| {
                container.get("name").and_then(Value::as_str) == Some(TRANSFORMER_CONTAINER_NAME)
            })
            .or(containers.first())?
            .get("ports")
            .and_then(Value::as_array)
    };
    let ports = block_ports
        .or_else(container_ports)
        .into_iter()
        .flatten()
        .map(|port| {
            let number = port.get("containerPort").and_then(Value::as_u64);
            let name = port.get("name").and_then(Value::as_str).unwrap_or_default();
            (name, number)
        });
    assemble_spec(component.get("timeout"), ports, grpc_v2, field, violations)
}

/// [`component_spec`] for the typed reader: the same ports (blocks by name, then the
/// containers).
fn typed_component_spec(
    component: &ComponentDocument,
    field: &str,
    violations: &mut Vec<Violation>,
) -> ComponentSpec {
    let grpc_v2 = component
        .blocks
        .values()
        .any(|block| block.protocol_version.as_ref().and_then(Value::as_str) == Some("grpc-v2"));
    let block_ports = component
        .blocks
        .values()
        .filter_map(|block| block.ports.as_ref())
        .find(|ports| !ports.is_empty());
    let container_ports = || {
        let containers = &component.containers;
        containers
            .iter()
            .find(|container| container.name.as_deref() == Some(TRANSFORMER_CONTAINER_NAME))
            .or(containers.first())?
            .ports
            .as_ref()
    };
    let ports = block_ports
        .or_else(container_ports)
        .into_iter()
        .flatten()
        .map(|port| {
            (
                port.name.as_deref().unwrap_or_default(),
                port.container_port,
            )
        });
    assemble_spec(
        component.timeout.as_ref(),
        ports,
        grpc_v2,
        field,
        violations,
    )
}

/// The timeout and the valid ports (1 to 65535; others are left to the API server's Pod
/// validation), in the order declared.
fn assemble_spec<'a>(
    timeout: Option<&Value>,
    ports: impl Iterator<Item = (&'a str, Option<u64>)>,
    grpc_v2: bool,
    field: &str,
    violations: &mut Vec<Violation>,
) -> ComponentSpec {
    let mut spec = ComponentSpec {
        grpc_v2,
        ..ComponentSpec::default()
    };
    match timeout {
        None | Some(Value::Null) => {}
        Some(value) => match value.as_i64() {
            Some(seconds) if seconds > 0 => spec.timeout_seconds = Some(seconds),
            _ => violations.push(Violation::new(
                format!("{field}.timeout"),
                format!("must be a positive whole number of seconds, found {value}"),
            )),
        },
    }
    spec.ports = ports
        .filter_map(|(name, number)| {
            let number = number.and_then(|number| u16::try_from(number).ok())?;
            (number != 0).then(|| ContainerPort {
                name: name.to_string(),
                number,
            })
        })
        .collect();
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_components_ports_and_timeouts() {
        let isvc = InferenceService::from_json(
            &json!({
                "metadata": {"name": "m", "namespace": "ns", "labels": {"a": "b"}},
                "spec": {
                    "predictor": {"timeout": 30, "model": {"protocolVersion": "v2",
                        "ports": [{"name": "h2c", "containerPort": 9000},
                                  {"name": "http1", "containerPort": 8085}]}},
                    "transformer": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]}
                }
            }),
            "default",
        )
        .unwrap();
        assert_eq!(isvc.components.len(), 2);
        let predictor = &isvc.components[0];
        assert_eq!(predictor.service_name, "m-predictor");
        assert_eq!(predictor.spec.timeout_seconds, Some(30));
        let port = |name: &str, number| ContainerPort {
            name: name.to_string(),
            number,
        };
        assert_eq!(
            predictor.spec.ports,
            [port("h2c", 9000), port("http1", 8085)]
        );
        assert_eq!(isvc.entry_component().kind, ComponentKind::Transformer);
        assert_eq!(isvc.entry_component().spec.ports, [port("", 8080)]);
    }

    #[test]
    fn grpc_v2_without_ports_is_recorded() {
        let isvc = InferenceService::from_json(
            &json!({"metadata": {"name": "m"},
                    "spec": {"predictor": {"sklearn": {"protocolVersion": "grpc-v2"}}}}),
            "team",
        )
        .unwrap();
        assert_eq!(isvc.namespace, "team");
        assert!(isvc.components[0].spec.grpc_v2);
        assert!(isvc.components[0].spec.ports.is_empty());
    }

    /// KServe builds the Service from the model/framework block's container, else the
    /// `transformer-container`, else the first container: a sidecar's ports never count.
    #[test]
    fn ports_come_from_the_container_kserve_builds_the_service_from() {
        let cases = [
            (
                json!({"containers": [{"name": "main", "ports": [{"containerPort": 1}]},
                                   {"name": "sidecar", "ports": [{"containerPort": 2}]}]}),
                1,
            ),
            (
                json!({"containers": [{"name": "sidecar", "ports": [{"containerPort": 2}]},
                                   {"name": "transformer-container", "ports": [{"containerPort": 3}]}]}),
                3,
            ),
            (
                json!({"model": {"ports": [{"containerPort": 4}]},
                    "containers": [{"name": "sidecar", "ports": [{"containerPort": 2}]}]}),
                4,
            ),
            (
                json!({"model": {"ports": []}, "containers": [{"ports": [{"containerPort": 5}]}]}),
                5,
            ),
        ];
        for (predictor, expected) in cases {
            let object = json!({"metadata": {"name": "m"}, "spec": {"predictor": predictor}});
            let precise = InferenceService::from_json(&object, "ns").unwrap();
            let (fast, _) = InferenceService::from_json_text(&object.to_string(), "ns").unwrap();
            assert_eq!(precise, fast, "{object}");
            let numbers: Vec<u16> = precise.components[0]
                .spec
                .ports
                .iter()
                .map(|port| port.number)
                .collect();
            assert_eq!(numbers, [expected], "{object}");
        }
    }

    #[test]
    fn predictor_variant_names_the_service() {
        let isvc = InferenceService::from_json(
            &json!({"metadata": {"name": "m"}, "spec": {"predictor": {"name": "v2"}}}),
            "ns",
        )
        .unwrap();
        assert_eq!(isvc.components[0].service_name, "m-v2-predictor");
    }

    /// The fast typed reader and the precise one give the same view (or the same violations)
    /// for every shape, including the ones where the typed read fails and falls back.
    #[test]
    fn both_readers_agree() {
        let objects = [
            json!({"metadata": {"name": "m", "namespace": "ns", "uid": "u", "labels": {"a": "b"},
                    "annotations": {"x/y": "z"}, "managedFields": [{"manager": "kubectl"}]},
                   "spec": {"predictor": {"name": "v", "timeout": 5, "model": {"ports": [{"name": "grpc", "containerPort": 9000}]}},
                            "transformer": {"containers": [{"ports": [{"containerPort": 8080}]}]},
                            "explainer": null, "other": 1},
                   "status": {"deploymentMode": "Standard", "url": "x"}}),
            json!({"metadata": {"name": "m", "namespace": "", "annotations": null}, "spec": {"predictor": {}}}),
            json!({"metadata": {"name": "m", "uid": 7}, "spec": {"predictor": {}}, "status": {"deploymentMode": 3}}),
            json!({"metadata": {"name": "m", "labels": {"a": 1}}, "spec": {"predictor": {}}}),
            json!({"metadata": {"name": ""}, "spec": {"transformer": {}}}),
            json!({"metadata": null, "spec": null}),
            json!({"spec": {"predictor": "x", "transformer": {"timeout": "30s"}}}),
            // Blocks are visited by name, containers first; grpc-v2 in any block counts.
            json!({"metadata": {"name": "m"}, "spec": {"predictor": {
                "zeta": {"ports": [{"name": "grpc-z", "containerPort": 7000}, {"containerPort": 7001}]},
                "alpha": {"ports": [{"name": "h2c", "containerPort": 6000}], "protocolVersion": "v2"},
                "containers": [{"ports": [{"containerPort": 5000}]}, {"name": "no-ports"}],
                "resources": {"limits": {"cpu": "1"}}, "env": [{"name": "A"}], "minReplicas": 2},
                "transformer": {"sklearn": {"protocolVersion": "grpc-v2"}, "timeout": 10}}}),
            // Types the typed read refuses, which the JSON reader handles its own way.
            json!({"metadata": {"name": "m"}, "spec": {"predictor": {"model": {"ports": [{"name": 7, "containerPort": "x"}, 3]}}}}),
            json!({"metadata": {"name": "m"}, "spec": {"predictor": {"containers": {"ports": [{"containerPort": 1}]}}}}),
            json!({"metadata": {"name": "m"}, "spec": {"predictor": {"timeout": {"ports": [{"containerPort": 9}]}, "model": {"ports": [{"containerPort": 70000}]}}}}),
            json!({"metadata": {"name": "m"}, "spec": {"predictor": {"name": {"protocolVersion": "grpc-v2"}}}}),
        ];
        for object in objects {
            let precise = InferenceService::from_json(&object, "default");
            let fast = InferenceService::from_json_text(&object.to_string(), "default")
                .map(|(isvc, _)| isvc)
                .map_err(|error| match error {
                    ReadError::Invalid { violations, .. } => violations,
                    other => panic!("{other:?}"),
                });
            assert_eq!(fast, precise, "{object}");
        }
        let (_, facts) = InferenceService::from_json_text(
            r#"{"metadata": {"name": "m", "annotations": {}, "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"predictor": {}}}"#,
            "ns",
        )
        .unwrap();
        assert_eq!(
            facts,
            ObjectFacts {
                has_annotations: true,
                being_deleted: true
            }
        );
        let (_, facts) = InferenceService::from_json_text(
            r#"{"metadata": {"name": "m", "annotations": null}, "spec": {"predictor": {}}}"#,
            "ns",
        )
        .unwrap();
        assert!(!facts.has_annotations && !facts.being_deleted);
        assert_eq!(
            InferenceService::from_json_text("[1]", "ns").unwrap_err(),
            ReadError::NotAnObject
        );
    }

    #[test]
    fn every_structural_problem_is_reported() {
        let violations = InferenceService::from_json(
            &json!({"metadata": {"labels": {"a": 1}, "annotations": "x"},
                    "spec": {"transformer": {"timeout": "30s"}}}),
            "ns",
        )
        .unwrap_err();
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "metadata.labels[a]",
                "metadata.annotations",
                "spec.transformer.timeout",
                "spec.predictor"
            ]
        );
    }
}
