//! A parser and renderer for the small part of Go's `text/template` language
//! that KServe's `domainTemplate` and `pathTemplate` settings use.
//!
//! KServe is written in Go and builds each InferenceService's host name and
//! URL path by executing these templates with `text/template`. This webhook
//! has to predict those exact strings, so it follows Go's syntax and Go's
//! white-space rules, but only for the forms those settings need:
//!
//! | Form | Renders |
//! |---|---|
//! | `{{ .Name }}`, `{{ .Namespace }}`, `{{ .IngressDomain }}` | the object's name, its namespace, the ingress domain |
//! | `{{ .Annotations.key }}`, `{{ .Labels.key }}` | one annotation or label whose key is a Go identifier |
//! | `{{ index .Annotations "a.b/c" }}`, `{{ index .Labels "x" }}` | one annotation or label with any key |
//! | `{{/* comment */}}` | nothing |
//!
//! Spaces inside the braces are optional (`{{.Name}}` works). Trim markers
//! work as in Go: `{{- ` removes the white space before the action and ` -}}`
//! removes the white space after it. Text outside actions, including a lone
//! `}}` or `{`, is copied verbatim.
//!
//! A template is parsed once, when the configuration is loaded, and rendered
//! on every admission request. [`Template::render`] therefore does no parsing
//! and allocates only the output string.
//!
//! # Deliberate differences from Go
//!
//! - Reading an annotation or label that the object does not have is a
//!   [`RenderError`] that names the key. Go renders `<no value>` (or an empty
//!   string through `index`); KServe then fails much later with a host-name
//!   validation error that does not mention the template, which leaves the
//!   user guessing which key was missing.
//! - Every construct outside the table above (pipelines, functions other than
//!   `index`, variables, `if`/`range`, constants) is a parse error. Rejecting
//!   it is safer than approximating it: the webhook must never predict a
//!   string that differs from the one KServe will build.
//! - Keys after `.Annotations.` and `.Labels.` must be ASCII identifiers, and
//!   string literals must decode to valid UTF-8. Go accepts a few more
//!   spellings, but Kubernetes keys are ASCII, so those spellings could never
//!   read anything.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::ops::Range;
use std::str::CharIndices;
use std::str::FromStr;

const OPEN_DELIMITER: &str = "{{";
const CLOSE_DELIMITER: &str = "}}";
/// ` -}}` without its white space: the white space is checked separately
/// because Go accepts any of its four white-space characters there.
const TRIMMING_CLOSE_DELIMITER: &str = "-}}";
const OPEN_COMMENT: &str = "/*";
const CLOSE_COMMENT: &str = "*/";
/// `{{- ` is a trim marker only with white space after the dash, and that
/// white-space character belongs to the marker.
const LEFT_TRIM_MARKER_LENGTH: usize = 2;

/// Appended to "unknown field" messages so the user sees every choice at once.
const READABLE_FIELDS: &str = "a template can read .Name, .Namespace, .IngressDomain, \
.Annotations.<key>, .Labels.<key>, index .Annotations \"<key>\", index .Labels \"<key>\"";
const INDEX_USAGE: &str = "index needs a map and one key: write index .Annotations \"<key>\" \
or index .Labels \"<key>\"";
const PIPELINE_MESSAGE: &str =
    "unsupported pipeline |: an action reads one value and cannot pass it to a function";
/// The fields a template can name, used to suggest the right capitalisation.
const KNOWN_FIELDS: [&str; 5] = [
    "Name",
    "Namespace",
    "IngressDomain",
    "Annotations",
    "Labels",
];
/// Go's action keywords; named separately so the error says what they are.
const CONTROL_KEYWORDS: [&str; 10] = [
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];
const CONSTANTS: [&str; 3] = ["true", "false", "nil"];

/// A parsed template, ready to be rendered any number of times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// One value a template reads from the object being admitted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// `.Name`: the object's name.
    Name,
    /// `.Namespace`: the object's namespace.
    Namespace,
    /// `.IngressDomain`: the ingress domain from KServe's configuration.
    IngressDomain,
    /// `.Annotations.key` or `index .Annotations "key"`.
    Annotation(String),
    /// `.Labels.key` or `index .Labels "key"`.
    Label(String),
}

/// Why a template could not be parsed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// 1-based line of the offending place.
    pub line: usize,
    /// 1-based column, counted in characters rather than bytes, so it matches
    /// what an editor shows.
    pub column: usize,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

/// Why a parsed template could not be rendered for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The template reads this annotation key, and the object has no such annotation.
    MissingAnnotation(String),
    /// The template reads this label key, and the object has no such label.
    MissingLabel(String),
}

/// The values a template can read; borrowed, so building one costs nothing.
#[derive(Debug, Clone, Copy)]
pub struct TemplateData<'a> {
    /// Rendered by `.Name`.
    pub name: &'a str,
    /// Rendered by `.Namespace`.
    pub namespace: &'a str,
    /// Rendered by `.IngressDomain`.
    pub ingress_domain: &'a str,
    /// Read by `.Annotations.key` and `index .Annotations "key"`.
    pub annotations: &'a BTreeMap<String, String>,
    /// Read by `.Labels.key` and `index .Labels "key"`.
    pub labels: &'a BTreeMap<String, String>,
}

impl Template {
    /// Parses `source` with Go's `text/template` syntax, restricted to the
    /// forms listed in the module documentation.
    ///
    /// # Errors
    ///
    /// Returns a [`TemplateError`] with the line and column of the first
    /// problem: an unclosed action or comment, an empty action, an unknown or
    /// nested field, a whole map, or any unsupported construct.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        Self::parse_dialect(source, Dialect::Kserve)
    }

    /// Parses a template of `dialect`: [`Template::parse`] for KServe's settings, or Knative's
    /// `domain-template`, which names the domain `.Domain` (rendered from
    /// [`TemplateData::ingress_domain`]) and reads the same other fields.
    ///
    /// # Errors
    ///
    /// As [`Template::parse`]; in the Knative dialect `.IngressDomain` is an unknown field.
    pub fn parse_dialect(source: &str, dialect: Dialect) -> Result<Template, TemplateError> {
        let parts = Parser {
            source,
            dialect,
            parts: Vec::new(),
        }
        .parse()?;
        Ok(Template {
            source: source.to_owned(),
            parts,
        })
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every field the template reads, in the order it reads them, repeats
    /// included; the webhook uses this to check an object before rendering.
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.parts.iter().filter_map(|part| match part {
            Part::Field(field) => Some(field),
            Part::Text(_) => None,
        })
    }

    /// Renders the template into a new string.
    ///
    /// # Errors
    ///
    /// Returns a [`RenderError`] naming the first annotation or label the
    /// template reads that `data` does not have.
    pub fn render(&self, data: &TemplateData<'_>) -> Result<String, RenderError> {
        let mut output = String::with_capacity(self.rendered_length(data)?);
        self.render_into(data, &mut output)?;
        Ok(output)
    }

    /// Appends the rendered template to `output`, so a caller can build a
    /// longer string without an intermediate allocation. On error `output` is
    /// left exactly as it was.
    ///
    /// # Errors
    ///
    /// Returns a [`RenderError`] naming the first annotation or label the
    /// template reads that `data` does not have.
    pub fn render_into(
        &self,
        data: &TemplateData<'_>,
        output: &mut String,
    ) -> Result<(), RenderError> {
        let original_length = output.len();
        let result = self.append_parts(data, output);
        if result.is_err() {
            output.truncate(original_length);
        }
        result
    }

    fn append_parts(
        &self,
        data: &TemplateData<'_>,
        output: &mut String,
    ) -> Result<(), RenderError> {
        for part in &self.parts {
            match part {
                Part::Text(range) => output.push_str(&self.source[range.clone()]),
                Part::Field(field) => output.push_str(field.value(data)?),
            }
        }
        Ok(())
    }

    /// The exact length of the output, so [`Template::render`] allocates once.
    /// It also finds a missing key before anything is allocated.
    fn rendered_length(&self, data: &TemplateData<'_>) -> Result<usize, RenderError> {
        self.parts.iter().try_fold(0, |length, part| {
            let part_length = match part {
                Part::Text(range) => range.len(),
                Part::Field(field) => field.value(data)?.len(),
            };
            Ok(length + part_length)
        })
    }
}

impl FromStr for Template {
    type Err = TemplateError;

    fn from_str(source: &str) -> Result<Self, Self::Err> {
        Template::parse(source)
    }
}

impl Field {
    fn value<'a>(&self, data: &TemplateData<'a>) -> Result<&'a str, RenderError> {
        match self {
            Field::Name => Ok(data.name),
            Field::Namespace => Ok(data.namespace),
            Field::IngressDomain => Ok(data.ingress_domain),
            Field::Annotation(key) => data
                .annotations
                .get(key)
                .map(String::as_str)
                .ok_or_else(|| RenderError::MissingAnnotation(key.clone())),
            Field::Label(key) => data
                .labels
                .get(key)
                .map(String::as_str)
                .ok_or_else(|| RenderError::MissingLabel(key.clone())),
        }
    }
}

/// Shows the field the way a template would spell it: `.Labels.app` when the
/// key is a Go identifier, `index .Labels "app-name"` otherwise, so the text
/// can be pasted back into a template.
impl fmt::Display for Field {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Name => formatter.write_str(".Name"),
            Field::Namespace => formatter.write_str(".Namespace"),
            Field::IngressDomain => formatter.write_str(".IngressDomain"),
            Field::Annotation(key) => write_map_read(formatter, MapField::Annotations, key),
            Field::Label(key) => write_map_read(formatter, MapField::Labels, key),
        }
    }
}

fn write_map_read(formatter: &mut fmt::Formatter<'_>, map: MapField, key: &str) -> fmt::Result {
    if is_go_identifier(key) {
        write!(formatter, ".{map}.{key}")
    } else {
        write!(formatter, "index .{map} {}", GoQuoted(key))
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 1 {
            write!(formatter, "line {}, ", self.line)?;
        }
        write!(formatter, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for TemplateError {}

impl fmt::Display for RenderError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, key) = match self {
            RenderError::MissingAnnotation(key) => ("annotation", key),
            RenderError::MissingLabel(key) => ("label", key),
        };
        write!(
            formatter,
            "the template reads {kind} {}, which the object does not have",
            GoQuoted(key)
        )
    }
}

impl std::error::Error for RenderError {}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text copied verbatim, after trim markers were applied. It is a byte
    /// range of the source rather than a copy, so parsing stores the text once.
    Text(Range<usize>),
    Field(Field),
}

/// The two maps a template can read one key from.
#[derive(Debug, Clone, Copy)]
enum MapField {
    Annotations,
    Labels,
}

impl MapField {
    fn field(self, key: String) -> Field {
        match self {
            MapField::Annotations => Field::Annotation(key),
            MapField::Labels => Field::Label(key),
        }
    }

    /// How one of the map's values is called in a sentence.
    fn value_noun(self) -> &'static str {
        match self {
            MapField::Annotations => "an annotation value",
            MapField::Labels => "a label value",
        }
    }
}

/// The Go field name, as written after the dot.
impl fmt::Display for MapField {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            MapField::Annotations => "Annotations",
            MapField::Labels => "Labels",
        })
    }
}

/// Writes a string as a Go double-quoted string literal, so that keys in
/// messages and in [`Field`]'s display can be pasted into a template.
struct GoQuoted<'a>(&'a str);

impl fmt::Display for GoQuoted<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_char('"')?;
        for character in self.0.chars() {
            match character {
                '"' => formatter.write_str("\\\"")?,
                '\\' => formatter.write_str("\\\\")?,
                '\n' => formatter.write_str("\\n")?,
                '\t' => formatter.write_str("\\t")?,
                '\r' => formatter.write_str("\\r")?,
                '\u{7}' => formatter.write_str("\\a")?,
                '\u{8}' => formatter.write_str("\\b")?,
                '\u{b}' => formatter.write_str("\\v")?,
                '\u{c}' => formatter.write_str("\\f")?,
                control if control.is_ascii_control() => {
                    write!(formatter, "\\x{:02x}", u32::from(control))?;
                }
                control if control.is_control() => {
                    write!(formatter, "\\u{:04x}", u32::from(control))?;
                }
                other => formatter.write_char(other)?,
            }
        }
        formatter.write_char('"')
    }
}

/// Where an action or a comment ends.
struct Closing {
    /// Byte offset just after the closing `}}`.
    end: usize,
    /// Whether it closed with ` -}}`, which trims the white space that follows.
    trims_following_text: bool,
}

/// Which program executes the template, which decides the name of the domain field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// KServe's `domainTemplate` and `pathTemplate`: `.IngressDomain`.
    Kserve,
    /// Knative's `config-network` `domain-template` (Knative `DomainTemplateValues`): `.Domain`,
    /// the domain from `config-domain`.
    Knative,
}

impl Dialect {
    /// The name of the field that renders [`TemplateData::ingress_domain`].
    fn domain_field(self) -> &'static str {
        match self {
            Self::Kserve => "IngressDomain",
            Self::Knative => "Domain",
        }
    }
}

/// Walks the source once, alternating between text and actions.
struct Parser<'s> {
    source: &'s str,
    dialect: Dialect,
    parts: Vec<Part>,
}

impl Parser<'_> {
    fn parse(mut self) -> Result<Vec<Part>, TemplateError> {
        let source = self.source;
        let mut position = 0;
        let mut trims_following_text = false;
        while let Some(distance) = source[position..].find(OPEN_DELIMITER) {
            let open = position + distance;
            let after_open = open + OPEN_DELIMITER.len();
            let trims_preceding_text = has_left_trim_marker(&source[after_open..]);
            self.push_text(position..open, trims_following_text, trims_preceding_text);
            let body = if trims_preceding_text {
                after_open + LEFT_TRIM_MARKER_LENGTH
            } else {
                after_open
            };
            let closing = if source[body..].starts_with(OPEN_COMMENT) {
                skip_comment(source, open, body)?
            } else {
                self.parse_action(open, body)?
            };
            position = closing.end;
            trims_following_text = closing.trims_following_text;
        }
        self.push_text(position..source.len(), trims_following_text, false);
        Ok(self.parts)
    }

    fn parse_action(&mut self, open: usize, body: usize) -> Result<Closing, TemplateError> {
        let action = lex_action(self.source, open, body)?;
        let field = parse_command(self.source, open, &action.tokens, self.dialect)?;
        self.parts.push(Part::Field(field));
        Ok(action.closing)
    }

    /// Records the text between two actions, trimmed the way Go trims it:
    /// only the four white-space characters Go recognises, and only on the
    /// sides that a trim marker touches.
    fn push_text(&mut self, range: Range<usize>, trims_start: bool, trims_end: bool) {
        let mut text = &self.source[range.clone()];
        if trims_start {
            text = text.trim_start_matches(is_go_space);
        }
        let start = range.end - text.len();
        if trims_end {
            text = text.trim_end_matches(is_go_space);
        }
        if !text.is_empty() {
            self.parts.push(Part::Text(start..start + text.len()));
        }
    }
}

/// The white space Go's template lexer recognises; trim markers remove only
/// these, so a non-breaking space, for example, survives as in Go.
fn is_go_space(character: char) -> bool {
    matches!(character, ' ' | '\t' | '\r' | '\n')
}

/// Go ASCII identifier syntax, which a key needs to follow `.Labels.`.
fn is_go_identifier(text: &str) -> bool {
    let mut characters = text.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
}

/// `{{-3}}` is not a trim marker: Go requires white space after the dash.
fn has_left_trim_marker(after_open: &str) -> bool {
    let mut characters = after_open.chars();
    characters.next() == Some('-') && characters.next().is_some_and(is_go_space)
}

/// Skips `{{/* ... */}}`. As in Go, the comment must start right after `{{`
/// (or `{{- `) and must be followed directly by `}}` or ` -}}`.
fn skip_comment(source: &str, open: usize, body: usize) -> Result<Closing, TemplateError> {
    let comment_text = body + OPEN_COMMENT.len();
    let Some(distance) = source[comment_text..].find(CLOSE_COMMENT) else {
        return Err(error_at(
            source,
            open,
            "unclosed comment: /* has no matching */",
        ));
    };
    let after_comment = comment_text + distance + CLOSE_COMMENT.len();
    let rest = &source[after_comment..];
    if rest.starts_with(CLOSE_DELIMITER) {
        return Ok(Closing {
            end: after_comment + CLOSE_DELIMITER.len(),
            trims_following_text: false,
        });
    }
    // Every Go white-space character is one byte long, so `rest[1..]` is safe.
    if rest.starts_with(is_go_space) && rest[1..].starts_with(TRIMMING_CLOSE_DELIMITER) {
        return Ok(Closing {
            end: after_comment + 1 + TRIMMING_CLOSE_DELIMITER.len(),
            trims_following_text: true,
        });
    }
    Err(error_at(
        source,
        after_comment,
        "comment ends before the closing delimiter: write */}} or */ -}}",
    ))
}

/// The words and literals of one action, and where the action ends.
struct Action<'s> {
    tokens: Vec<Token<'s>>,
    closing: Closing,
}

struct Token<'s> {
    kind: TokenKind<'s>,
    /// Byte offset of the token's first character, for error positions.
    offset: usize,
}

enum TokenKind<'s> {
    /// Anything up to white space, a literal, `|`, a parenthesis or a
    /// delimiter: `.Name`, `index`, `$x`, `3`. Classified by the parser.
    Word(&'s str),
    /// A decoded `"..."` or `` `...` `` literal.
    StringLiteral(String),
    Pipe,
    Parenthesis,
}

/// Splits an action into tokens up to its closing delimiter. String literals
/// are lexed here so that a `}}` inside one does not close the action, just
/// as in Go.
fn lex_action(source: &str, open: usize, body: usize) -> Result<Action<'_>, TemplateError> {
    let mut tokens = Vec::new();
    let mut position = body;
    loop {
        let token_start = skip_go_space(source, position);
        let rest = &source[token_start..];
        let follows_space = token_start > position;
        if follows_space && rest.starts_with(TRIMMING_CLOSE_DELIMITER) {
            let end = token_start + TRIMMING_CLOSE_DELIMITER.len();
            return Ok(action(tokens, end, true));
        }
        if rest.starts_with(CLOSE_DELIMITER) {
            return Ok(action(tokens, token_start + CLOSE_DELIMITER.len(), false));
        }
        // A `{{` inside an action almost always means the previous `}}` is missing.
        let Some(first) = rest
            .chars()
            .next()
            .filter(|_| !rest.starts_with(OPEN_DELIMITER))
        else {
            return Err(error_at(
                source,
                open,
                "unclosed action: this {{ has no matching }}",
            ));
        };
        let (token, end) = lex_token(source, token_start, first)?;
        tokens.push(token);
        position = end;
    }
}

fn action(tokens: Vec<Token<'_>>, end: usize, trims_following_text: bool) -> Action<'_> {
    Action {
        tokens,
        closing: Closing {
            end,
            trims_following_text,
        },
    }
}

fn skip_go_space(source: &str, position: usize) -> usize {
    let rest = &source[position..];
    position + (rest.len() - rest.trim_start_matches(is_go_space).len())
}

/// Lexes the token starting with `first` at `start`; returns it and the
/// offset just after it.
fn lex_token(source: &str, start: usize, first: char) -> Result<(Token<'_>, usize), TemplateError> {
    let single = |kind| {
        Ok((
            Token {
                kind,
                offset: start,
            },
            start + 1,
        ))
    };
    match first {
        '"' => lex_quoted_string(source, start),
        '`' => lex_raw_string(source, start),
        '|' => single(TokenKind::Pipe),
        '(' | ')' => single(TokenKind::Parenthesis),
        _ => lex_word(source, start),
    }
}

fn lex_word(source: &str, start: usize) -> Result<(Token<'_>, usize), TemplateError> {
    let rest = &source[start..];
    let length = word_length(rest);
    let word = &rest[..length];
    let end = start + length;
    let after = &source[end..];
    // Go rejects `.Labels"x"`: a field or a name must be followed by a separator.
    if after.starts_with(['"', '`']) {
        return Err(error_at(
            source,
            end,
            format!("missing white space between {word} and the string literal after it"),
        ));
    }
    if word.ends_with('-') && after.starts_with(CLOSE_DELIMITER) {
        return Err(error_at(
            source,
            end - 1,
            "a trim marker needs white space before the dash: write \" -}}\"",
        ));
    }
    let token = Token {
        kind: TokenKind::Word(word),
        offset: start,
    };
    Ok((token, end))
}

fn word_length(rest: &str) -> usize {
    rest.char_indices()
        .find(|&(index, character)| {
            is_go_space(character)
                || matches!(character, '"' | '`' | '|' | '(' | ')')
                || rest[index..].starts_with(CLOSE_DELIMITER)
                || rest[index..].starts_with(OPEN_DELIMITER)
        })
        .map_or(rest.len(), |(index, _)| index)
}

/// Lexes and decodes a Go interpreted string literal. It ends at the first
/// unescaped `"` and, as in Go, may not contain a raw newline.
fn lex_quoted_string(source: &str, start: usize) -> Result<(Token<'_>, usize), TemplateError> {
    let content_start = start + 1;
    let mut bytes = Vec::new();
    let mut characters = source[content_start..].char_indices();
    while let Some((index, character)) = characters.next() {
        let offset = content_start + index;
        match character {
            '"' => {
                let value = String::from_utf8(bytes).map_err(|_| {
                    error_at(source, start, "string literal is not valid UTF-8 text")
                })?;
                let token = Token {
                    kind: TokenKind::StringLiteral(value),
                    offset: start,
                };
                return Ok((token, offset + 1));
            }
            '\n' => break,
            '\\' => push_escape(source, start, offset, &mut characters, &mut bytes)?,
            other => push_character(&mut bytes, other),
        }
    }
    Err(unterminated_string(source, start))
}

fn push_character(bytes: &mut Vec<u8>, character: char) {
    let mut encoded = [0; 4];
    bytes.extend_from_slice(character.encode_utf8(&mut encoded).as_bytes());
}

/// Decodes the escape whose backslash is at `backslash` into `bytes`.
fn push_escape(
    source: &str,
    string_start: usize,
    backslash: usize,
    characters: &mut CharIndices<'_>,
    bytes: &mut Vec<u8>,
) -> Result<(), TemplateError> {
    // As in Go's lexer, a backslash before a newline or the end of input
    // leaves the literal open.
    let Some((_, letter)) = characters.next().filter(|&(_, letter)| letter != '\n') else {
        return Err(unterminated_string(source, string_start));
    };
    match single_letter_escape(letter) {
        Some(character) => push_character(bytes, character),
        None => push_numeric_escape(letter, characters, bytes)
            .map_err(|message| error_at(source, backslash, message))?,
    }
    Ok(())
}

/// The one-letter escapes a Go interpreted string literal allows. `\'` is
/// missing on purpose: Go allows it only in character literals.
fn single_letter_escape(letter: char) -> Option<char> {
    match letter {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        '"' => Some('"'),
        _ => None,
    }
}

/// Decodes `\xHH` and octal `\NNN`, which give one byte each (several can
/// form one UTF-8 character, as in Go), and `\uHHHH` and `\UHHHHHHHH`, which
/// give one Unicode character. Returns the error message on failure.
fn push_numeric_escape(
    letter: char,
    characters: &mut CharIndices<'_>,
    bytes: &mut Vec<u8>,
) -> Result<(), String> {
    let as_byte = |value: u32| u8::try_from(value).ok();
    match letter {
        'x' => {
            let byte = read_digits(characters, 16, 2, 0).and_then(as_byte);
            bytes.push(byte.ok_or("escape \\x needs 2 hexadecimal digits")?);
        }
        '0'..='7' => {
            let first_digit = letter.to_digit(8).unwrap_or_default();
            let byte = read_digits(characters, 8, 2, first_digit).and_then(as_byte);
            bytes.push(
                byte.ok_or("octal escape needs 3 digits (0-7) and a value of at most \\377")?,
            );
        }
        'u' | 'U' => {
            let digit_count = if letter == 'u' { 4 } else { 8 };
            let character = read_digits(characters, 16, digit_count, 0).and_then(char::from_u32);
            push_character(
                bytes,
                character.ok_or_else(|| {
                    format!("escape \\{letter} needs {digit_count} hexadecimal digits forming a valid Unicode character")
                })?,
            );
        }
        other => return Err(format!("unknown escape \\{other} in string literal")),
    }
    Ok(())
}

fn unterminated_string(source: &str, start: usize) -> TemplateError {
    error_at(
        source,
        start,
        "unterminated string literal: add the closing \"",
    )
}

/// Reads `count` digits in `radix`, continuing from `initial`. `None` when a
/// digit is missing or invalid. Eight hexadecimal digits still fit in `u32`.
fn read_digits(
    characters: &mut CharIndices<'_>,
    radix: u32,
    count: usize,
    initial: u32,
) -> Option<u32> {
    (0..count).try_fold(initial, |value, _| {
        let (_, character) = characters.next()?;
        Some(value * radix + character.to_digit(radix)?)
    })
}

/// Lexes a Go raw string literal: everything up to the next backquote,
/// newlines included, with no escapes.
fn lex_raw_string(source: &str, start: usize) -> Result<(Token<'_>, usize), TemplateError> {
    let content_start = start + 1;
    let Some(length) = source[content_start..].find('`') else {
        return Err(error_at(
            source,
            start,
            "unterminated raw string literal: add the closing `",
        ));
    };
    // Go's strconv.Unquote drops carriage returns from raw strings, so a
    // template saved with Windows line endings reads the same key.
    let value = source[content_start..content_start + length].replace('\r', "");
    let token = Token {
        kind: TokenKind::StringLiteral(value),
        offset: start,
    };
    Ok((token, content_start + length + 1))
}

/// Turns the tokens of one action into the single field it reads.
fn parse_command(
    source: &str,
    open: usize,
    tokens: &[Token<'_>],
    dialect: Dialect,
) -> Result<Field, TemplateError> {
    let Some((first, arguments)) = tokens.split_first() else {
        return Err(error_at(
            source,
            open,
            "empty action: write a field such as {{ .Name }} or remove the braces",
        ));
    };
    match &first.kind {
        TokenKind::Word("index") => parse_index(source, first, arguments),
        TokenKind::Word(word) if is_field_path(word) => {
            let field = parse_field_path(source, first.offset, word, dialect)?;
            match arguments.first() {
                Some(extra) => Err(unexpected_after(source, extra, &field)),
                None => Ok(field),
            }
        }
        _ => Err(unsupported(source, open, first)),
    }
}

/// `.5` is a number in Go, not a field.
fn is_field_path(word: &str) -> bool {
    word.starts_with('.') && !starts_number(word)
}

/// Go numbers start with a digit, optionally after a sign and a dot.
fn starts_number(word: &str) -> bool {
    let unsigned = word.strip_prefix(['+', '-']).unwrap_or(word);
    let unsigned = unsigned.strip_prefix('.').unwrap_or(unsigned);
    unsigned.starts_with(|character: char| character.is_ascii_digit())
}

/// Parses `.Name`, `.Annotations.key` and the like; `offset` is the position
/// of the leading dot.
fn parse_field_path(
    source: &str,
    offset: usize,
    word: &str,
    dialect: Dialect,
) -> Result<Field, TemplateError> {
    let path = &word[1..];
    if path.is_empty() {
        return Err(error_at(
            source,
            offset,
            "unsupported {{ . }}: the whole object cannot be rendered; read one field such as .Name",
        ));
    }
    let (name, rest) = match path.split_once('.') {
        Some((name, rest)) => (name, Some(rest)),
        None => (path, None),
    };
    let field = match name {
        "Name" => Field::Name,
        "Namespace" => Field::Namespace,
        _ if name == dialect.domain_field() => Field::IngressDomain,
        "IngressDomain" | "Domain" => {
            return Err(error_at(
                source,
                offset,
                format!(
                    "unknown field .{name}: this template names the domain .{}",
                    dialect.domain_field()
                ),
            ));
        }
        "Annotations" => return parse_map_key(source, offset, MapField::Annotations, rest),
        "Labels" => return parse_map_key(source, offset, MapField::Labels, rest),
        "" => {
            return Err(error_at(
                source,
                offset + 1,
                "expected a field name after the dot",
            ));
        }
        _ => return Err(unknown_field_error(source, offset, name)),
    };
    match rest {
        None => Ok(field),
        Some(rest) => Err(error_at(
            source,
            offset + 1 + name.len(),
            format!(
                "nested field access {field}.{rest} is not supported: {field} is a string and has no fields"
            ),
        )),
    }
}

/// Go ends a field name at `,`, `:`, `+` and similar, so `.Name,` is a
/// known field followed by a stray character rather than an unknown field.
fn unknown_field_error(source: &str, offset: usize, name: &str) -> TemplateError {
    let known_length = identifier_prefix_length(name);
    let known = &name[..known_length];
    match name[known_length..].chars().next() {
        Some(stray) if KNOWN_FIELDS.contains(&known) => error_at(
            source,
            offset + ".".len() + known_length,
            format!("unexpected character {stray:?} after .{known}"),
        ),
        _ => error_at(source, offset, unknown_field_message(name)),
    }
}

/// Length of the leading run of ASCII identifier characters.
fn identifier_prefix_length(text: &str) -> usize {
    text.find(|character: char| !(character.is_ascii_alphanumeric() || character == '_'))
        .unwrap_or(text.len())
}

fn unknown_field_message(name: &str) -> String {
    match KNOWN_FIELDS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
    {
        Some(known) => format!(
            "unknown field .{name} (field names are case-sensitive; did you mean .{known}?): {READABLE_FIELDS}"
        ),
        None => format!("unknown field .{name}: {READABLE_FIELDS}"),
    }
}

/// Parses the key part of `.Annotations.key`; `rest` is whatever follows
/// `.Annotations.`, and `offset` is the position of the leading dot.
fn parse_map_key(
    source: &str,
    offset: usize,
    map: MapField,
    rest: Option<&str>,
) -> Result<Field, TemplateError> {
    let Some(key_path) = rest else {
        return Err(error_at(
            source,
            offset,
            format!(
                ".{map} is a whole map and cannot be rendered; read one key with .{map}.<key> or index .{map} \"<key>\""
            ),
        ));
    };
    let key_offset = offset + ".".len() + map.to_string().len() + ".".len();
    let (key, nested) = match key_path.split_once('.') {
        Some((key, _)) => (key, true),
        None => (key_path, false),
    };
    let index_form = GoQuoted(key_path);
    if key.is_empty() {
        return Err(error_at(
            source,
            key_offset,
            format!("expected a key after .{map}."),
        ));
    }
    if !is_go_identifier(key) {
        return Err(error_at(
            source,
            key_offset,
            format!(
                "{key} is not a Go identifier (letters, digits and underscores, not starting with a digit), so it cannot follow .{map}.; write index .{map} {index_form}"
            ),
        ));
    }
    if nested {
        return Err(error_at(
            source,
            key_offset + key.len(),
            format!(
                "nested field access .{map}.{key_path} is not supported: {} is a string and has no fields; to read the key {index_form} write index .{map} {index_form}",
                map.value_noun()
            ),
        ));
    }
    Ok(map.field(key.to_owned()))
}

/// Parses the arguments of `index`: exactly one map and one string key.
fn parse_index(
    source: &str,
    index: &Token<'_>,
    arguments: &[Token<'_>],
) -> Result<Field, TemplateError> {
    let map = parse_index_map(source, index, arguments.first())?;
    let key = parse_index_key(source, index, map, arguments.get(1))?;
    match arguments.get(2) {
        None => Ok(map.field(key)),
        Some(Token {
            kind: TokenKind::Pipe,
            offset,
        }) => Err(error_at(source, *offset, PIPELINE_MESSAGE)),
        Some(extra) => Err(error_at(
            source,
            extra.offset,
            format!("index takes exactly one key: write index .{map} \"<key>\""),
        )),
    }
}

fn parse_index_map(
    source: &str,
    index: &Token<'_>,
    argument: Option<&Token<'_>>,
) -> Result<MapField, TemplateError> {
    let Some(argument) = argument else {
        return Err(error_at(source, index.offset, INDEX_USAGE));
    };
    match &argument.kind {
        TokenKind::Word(".Annotations") => Ok(MapField::Annotations),
        TokenKind::Word(".Labels") => Ok(MapField::Labels),
        TokenKind::Pipe => Err(error_at(source, argument.offset, PIPELINE_MESSAGE)),
        other => Err(error_at(
            source,
            argument.offset,
            format!(
                "index can only read from .Annotations or .Labels, not {}",
                describe(other)
            ),
        )),
    }
}

fn parse_index_key(
    source: &str,
    index: &Token<'_>,
    map: MapField,
    argument: Option<&Token<'_>>,
) -> Result<String, TemplateError> {
    let Some(argument) = argument else {
        return Err(error_at(
            source,
            index.offset,
            format!("index needs one key after .{map}: write index .{map} \"<key>\""),
        ));
    };
    match &argument.kind {
        TokenKind::StringLiteral(key) => Ok(key.clone()),
        TokenKind::Pipe => Err(error_at(source, argument.offset, PIPELINE_MESSAGE)),
        other => Err(error_at(
            source,
            argument.offset,
            format!(
                "the key given to index must be a string literal such as \"app\", not {}",
                describe(other)
            ),
        )),
    }
}

/// The error for a token that follows a complete field, as in `.Name .Namespace`.
fn unexpected_after(source: &str, extra: &Token<'_>, field: &Field) -> TemplateError {
    let message = match &extra.kind {
        TokenKind::Pipe => PIPELINE_MESSAGE.to_owned(),
        other => format!(
            "unexpected {} after {field}: an action reads exactly one value",
            describe(other)
        ),
    };
    error_at(source, extra.offset, message)
}

/// The error for an action that starts with something other than a field or `index`.
fn unsupported(source: &str, open: usize, token: &Token<'_>) -> TemplateError {
    let message = match &token.kind {
        TokenKind::Pipe => PIPELINE_MESSAGE.to_owned(),
        TokenKind::Parenthesis => {
            "unsupported parentheses: an action reads exactly one value, so there is nothing to group"
                .to_owned()
        }
        TokenKind::StringLiteral(_) => {
            "unsupported string constant: write literal text outside the braces".to_owned()
        }
        TokenKind::Word(word) => {
            let directly_after_open = token.offset == open + OPEN_DELIMITER.len();
            unsupported_word_message(word, directly_after_open)
        }
    };
    error_at(source, token.offset, message)
}

fn unsupported_word_message(word: &str, directly_after_open: bool) -> String {
    let trim_hint = if directly_after_open && word.starts_with('-') {
        " (to trim white space, put a space after the dash: {{- )"
    } else {
        ""
    };
    let name = &word[..identifier_prefix_length(word)];
    if word.starts_with('$') {
        format!("unsupported variable {word}: {READABLE_FIELDS}")
    } else if starts_number(word) {
        format!("unsupported number {word}{trim_hint}")
    } else if word.starts_with(OPEN_COMMENT) {
        "a comment must start right after {{ or {{- : write {{/* ... */}}".to_owned()
    } else if word.starts_with('-') {
        format!("unexpected -{trim_hint}")
    } else if !is_go_identifier(name) {
        let first = word.chars().next().unwrap_or_default();
        format!("unexpected character {first:?} in action")
    } else if CONTROL_KEYWORDS.contains(&name) {
        format!("unsupported control structure {name}: a template here can only read fields")
    } else if CONSTANTS.contains(&name) {
        format!("unsupported constant {name}: write literal text outside the braces")
    } else {
        format!(
            "unsupported function {name}: the only function a template can call is index, as in index .Labels \"<key>\""
        )
    }
}

fn describe(kind: &TokenKind<'_>) -> String {
    match kind {
        TokenKind::Word(word) => (*word).to_owned(),
        TokenKind::StringLiteral(value) => GoQuoted(value).to_string(),
        TokenKind::Pipe => "|".to_owned(),
        TokenKind::Parenthesis => "a parenthesis".to_owned(),
    }
}

/// Builds an error at byte `offset`, converting it to the 1-based line and
/// character column an editor shows. Only runs on failure, so the hot path
/// never counts characters.
fn error_at(source: &str, offset: usize, message: impl Into<String>) -> TemplateError {
    let before = &source[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    TemplateError {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|&(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }

    /// Knative's `domain-template` names the domain `.Domain`; each dialect refuses the other's
    /// name, saying which one it reads.
    #[test]
    fn knative_dialect_reads_domain() {
        let empty = BTreeMap::new();
        let labels = map(&[("team", "blue")]);
        let data = TemplateData {
            name: "m-predictor",
            namespace: "user1",
            ingress_domain: "example.com",
            annotations: &empty,
            labels: &labels,
        };
        for (source, expected) in [
            (
                "{{.Name}}.{{.Namespace}}.{{.Domain}}",
                "m-predictor.user1.example.com",
            ),
            (
                "{{.Name}}-{{.Namespace}}.{{.Domain}}",
                "m-predictor-user1.example.com",
            ),
            (
                "{{ .Name }}.{{ .Labels.team }}.{{ .Domain }}",
                "m-predictor.blue.example.com",
            ),
        ] {
            let template = Template::parse_dialect(source, Dialect::Knative).unwrap();
            assert_eq!(template.render(&data).unwrap(), expected);
        }
        let error = Template::parse_dialect("{{.IngressDomain}}", Dialect::Knative).unwrap_err();
        assert!(
            error
                .message
                .contains("this template names the domain .Domain"),
            "{error}"
        );
        let error = Template::parse("{{ .Domain }}").unwrap_err();
        assert!(
            error
                .message
                .contains("this template names the domain .IngressDomain"),
            "{error}"
        );
    }

    struct RenderCase {
        source: &'static str,
        name: &'static str,
        namespace: &'static str,
        annotations: &'static [(&'static str, &'static str)],
        labels: &'static [(&'static str, &'static str)],
        expected: &'static str,
    }

    const fn case(source: &'static str, expected: &'static str) -> RenderCase {
        RenderCase {
            source,
            name: "NAME",
            namespace: "NAMESPACE",
            annotations: &[("team", "TEAM"), ("a.b/c", "ABC"), ("a\"b", "QUOTE")],
            labels: &[
                ("app", "APP"),
                ("x", "X"),
                ("app-name", "APPNAME"),
                ("}}", "BRACES"),
            ],
            expected,
        }
    }

    const RENDER_CASES: &[RenderCase] = &[
        // KServe's own examples.
        RenderCase {
            source: "{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}",
            name: "my-model",
            namespace: "test",
            annotations: &[],
            labels: &[],
            expected: "my-model-test.example.com",
        },
        RenderCase {
            source: "{{ .Name }}.{{ .Namespace }}.{{ .Annotations.annotation }}.{{ .IngressDomain }}",
            name: "model",
            namespace: "test",
            annotations: &[("annotation", "annotation-value")],
            labels: &[],
            expected: "model.test.annotation-value.example.com",
        },
        RenderCase {
            source: "{{ .Name }}.{{ .Namespace }}.{{ .Labels.label }}.{{ .IngressDomain }}",
            name: "model",
            namespace: "test",
            annotations: &[],
            labels: &[("label", "label-value")],
            expected: "model.test.label-value.example.com",
        },
        RenderCase {
            source: "/path/to/{{ .Namespace }}/{{ .Name }}",
            name: "model",
            namespace: "user",
            annotations: &[],
            labels: &[],
            expected: "/path/to/user/model",
        },
        // Every field, with and without inner spaces.
        case("{{.Name}}", "NAME"),
        case("{{ .Name }}", "NAME"),
        case("{{.Namespace}}/{{ .Namespace }}", "NAMESPACE/NAMESPACE"),
        case("{{.IngressDomain}}", "example.com"),
        case("{{ .Annotations.team }}", "TEAM"),
        case("{{.Labels.app}}", "APP"),
        case("{{ index .Annotations \"a.b/c\" }}", "ABC"),
        case("{{index .Labels \"x\"}}", "X"),
        case("{{ index .Labels `app-name` }}", "APPNAME"),
        case("{{ index .Annotations \"a\\\"b\" }}", "QUOTE"),
        case("{{ index .Annotations \"\\x61.b\\u002fc\" }}", "ABC"),
        case("{{ index .Annotations \"\\141.b/\\U00000063\" }}", "ABC"),
        case("{{\n\t.Name\r\n}}", "NAME"),
        // Text, including lone delimiters, is verbatim.
        case("plain text", "plain text"),
        case("", ""),
        case("a }} b { c } {{ .Name }} }}", "a }} b { c } NAME }}"),
        case("{{ .Name }}}", "NAME}"),
        case("{{ index .Labels \"}}\" }}", "BRACES"),
        // Trim markers.
        case("a  {{- .Name -}}  b", "aNAMEb"),
        case("a \n\t{{- .Name }} \n b", "aNAME \n b"),
        case("a {{ .Name -}} \r\n b", "a NAMEb"),
        case("a {{.Name\t-}} b", "a NAMEb"),
        case("a {{- \n.Name\n-}} b", "aNAMEb"),
        case("a\u{a0}{{- .Name }}", "a\u{a0}NAME"),
        case("{{ .Name -}}   ", "NAME"),
        case("   {{- .Name }}", "NAME"),
        case("{{ .Name -}} {{- .Namespace }}", "NAMENAMESPACE"),
        // Comments.
        case("a{{/* comment */}}b", "ab"),
        case("a {{- /* comment */ -}} b", "ab"),
        case("a {{- /* comment */}} b", "a b"),
        case("a {{/* comment */ -}} b", "a b"),
        case("a{{/* }} {{ */}}b", "ab"),
        case("a{{/*\nmulti\nline\n*/}}b", "ab"),
    ];

    #[test]
    fn renders_every_supported_form() {
        for case in RENDER_CASES {
            let annotations = map(case.annotations);
            let labels = map(case.labels);
            let data = TemplateData {
                name: case.name,
                namespace: case.namespace,
                ingress_domain: "example.com",
                annotations: &annotations,
                labels: &labels,
            };
            let template = Template::parse(case.source)
                .unwrap_or_else(|error| panic!("{:?} failed to parse: {error}", case.source));
            assert_eq!(
                template.render(&data).as_deref(),
                Ok(case.expected),
                "rendering {:?}",
                case.source
            );
        }
    }

    /// (source, line, column, a fragment the message must contain)
    #[rustfmt::skip]
    const ERROR_CASES: &[(&str, usize, usize, &str)] = &[
        ("{{ .Name }", 1, 1, "unclosed action"),
        ("{{ .Name", 1, 1, "unclosed action"),
        ("ab{{ .Name", 1, 3, "unclosed action"),
        ("{{", 1, 1, "unclosed action"),
        ("{{ .Name }}{{ .Name", 1, 12, "unclosed action"),
        ("{{ .Name } and {{ .Namespace }}", 1, 1, "unclosed action"),
        ("{{ }}", 1, 1, "empty action"),
        ("{{}}", 1, 1, "empty action"),
        ("{{- }}", 1, 1, "empty action"),
        ("{{-  -}}", 1, 1, "empty action"),
        ("{{- -}}", 1, 5, "white space before the dash"),
        ("x {{- -}}", 1, 7, "white space before the dash"),
        ("{{ .ModelName }}", 1, 4, "unknown field .ModelName"),
        ("{{ .name }}", 1, 4, "did you mean .Name?"),
        ("{{ .Name, }}", 1, 9, "unexpected character ',' after .Name"),
        ("{{ .Labels }}", 1, 4, "read one key"),
        ("{{ .Annotations }}", 1, 4, "read one key"),
        ("{{ .Name.X }}", 1, 9, "nested field access .Name.X"),
        ("{{ .Annotations.a.b }}", 1, 18, "index .Annotations \"a.b\""),
        ("{{ .Labels.app-name }}", 1, 12, "index .Labels \"app-name\""),
        ("{{ .Labels.1st }}", 1, 12, "not a Go identifier"),
        ("{{ .Labels. }}", 1, 12, "expected a key"),
        ("{{ ..Name }}", 1, 5, "expected a field name"),
        ("{{ . }}", 1, 4, "whole object"),
        ("{{ .Name | lower }}", 1, 10, "unsupported pipeline"),
        ("{{ .Name|lower }}", 1, 9, "unsupported pipeline"),
        ("{{ printf \"%s\" .Name }}", 1, 4, "unsupported function printf"),
        ("{{ $x }}", 1, 4, "unsupported variable $x"),
        ("{{ $x := .Name }}", 1, 4, "unsupported variable"),
        ("{{ if .Name }}x{{ end }}", 1, 4, "unsupported control structure if"),
        ("{{ end }}", 1, 4, "unsupported control structure end"),
        ("{{ range .Labels }}", 1, 4, "unsupported control structure range"),
        ("{{ true }}", 1, 4, "unsupported constant true"),
        ("{{-3}}", 1, 3, "unsupported number -3 (to trim"),
        ("{{ 3 }}", 1, 4, "unsupported number 3"),
        ("{{ .5 }}", 1, 4, "unsupported number"),
        ("{{ \"text\" }}", 1, 4, "unsupported string constant"),
        ("{{ (.Name) }}", 1, 4, "unsupported parentheses"),
        ("{{ .Name .Namespace }}", 1, 10, "unexpected .Namespace after .Name"),
        ("{{ .Name \"x\" }}", 1, 10, "unexpected \"x\" after .Name"),
        ("{{ index }}", 1, 4, "index needs a map and one key"),
        ("{{ index .Labels }}", 1, 4, "index needs one key after .Labels"),
        ("{{ index .Labels \"a\" \"b\" }}", 1, 22, "exactly one key"),
        ("{{ index .Labels \"a\" | x }}", 1, 22, "unsupported pipeline"),
        ("{{ index .Name \"x\" }}", 1, 10, "only read from .Annotations or .Labels, not .Name"),
        ("{{ index \"x\" .Labels }}", 1, 10, "only read from .Annotations or .Labels"),
        ("{{ index .Labels .Name }}", 1, 18, "must be a string literal"),
        ("{{ index .Labels \"x }}", 1, 18, "unterminated string literal"),
        ("{{ index .Labels \"x\n\" }}", 1, 18, "unterminated string literal"),
        ("{{ index .Labels \"x\\", 1, 18, "unterminated string literal"),
        ("{{ index .Labels `x }}", 1, 18, "unterminated raw string literal"),
        ("{{ index .Labels \"\\q\" }}", 1, 19, "unknown escape \\q"),
        ("{{ index .Labels \"\\'\" }}", 1, 19, "unknown escape \\'"),
        ("{{ index .Labels \"\\x4\" }}", 1, 19, "2 hexadecimal digits"),
        ("{{ index .Labels \"\\400\" }}", 1, 19, "octal escape"),
        ("{{ index .Labels \"\\ud800\" }}", 1, 19, "valid Unicode character"),
        ("{{ index .Labels \"\\xff\" }}", 1, 18, "not valid UTF-8"),
        ("{{ index .Labels\"x\" }}", 1, 17, "missing white space"),
        ("{{ .Name-}}", 1, 9, "white space before the dash"),
        ("{{-.Name}}", 1, 3, "unexpected - (to trim"),
        ("{{ /* comment */ }}", 1, 4, "comment must start right after"),
        ("{{/* comment */ }}", 1, 16, "comment ends before the closing delimiter"),
        ("{{/* comment */\r\n-}}", 1, 16, "comment ends before the closing delimiter"),
        ("{{/* comment }}", 1, 1, "unclosed comment"),
        ("{{ @ }}", 1, 4, "unexpected character '@'"),
        ("a\n  {{ .Bad }}", 2, 6, "unknown field .Bad"),
        ("a\r\nb\n{{ .Bad }}", 3, 4, "unknown field .Bad"),
        ("\u{e9}\u{e9}{{ .Bad }}", 1, 6, "unknown field .Bad"),
    ];

    #[test]
    fn reports_each_error_at_its_place() {
        for &(source, line, column, fragment) in ERROR_CASES {
            let error = Template::parse(source).expect_err(source);
            assert_eq!(
                (error.line, error.column),
                (line, column),
                "position for {source:?}: {error}"
            );
            assert!(
                error.message.contains(fragment),
                "message for {source:?} should contain {fragment:?}: {error}"
            );
        }
    }

    #[test]
    fn unknown_field_message_lists_every_readable_field() {
        let error = Template::parse("{{ .ModelName }}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "column 4: unknown field .ModelName: a template can read .Name, .Namespace, \
             .IngressDomain, .Annotations.<key>, .Labels.<key>, index .Annotations \"<key>\", \
             index .Labels \"<key>\""
        );
    }

    #[test]
    fn template_error_names_the_line_only_after_the_first() {
        let error = |line, column| TemplateError {
            line,
            column,
            message: "oops".to_owned(),
        };
        assert_eq!(error(1, 7).to_string(), "column 7: oops");
        assert_eq!(error(3, 2).to_string(), "line 3, column 2: oops");
    }

    #[test]
    fn missing_annotation_and_label_are_errors_naming_the_key() {
        let empty = BTreeMap::new();
        let data = TemplateData {
            name: "model",
            namespace: "test",
            ingress_domain: "example.com",
            annotations: &empty,
            labels: &empty,
        };
        let cases = [
            (
                "{{ .Name }}.{{ .Annotations.team }}",
                RenderError::MissingAnnotation("team".to_owned()),
                "the template reads annotation \"team\", which the object does not have",
            ),
            (
                "{{ index .Labels \"app.kubernetes.io/name\" }}",
                RenderError::MissingLabel("app.kubernetes.io/name".to_owned()),
                "the template reads label \"app.kubernetes.io/name\", which the object does not have",
            ),
        ];
        for (source, expected, message) in cases {
            let template = Template::parse(source).unwrap();
            assert_eq!(template.render(&data), Err(expected.clone()));
            assert_eq!(expected.to_string(), message);
            let mut output = String::from("kept");
            assert_eq!(template.render_into(&data, &mut output), Err(expected));
            assert_eq!(
                output, "kept",
                "render_into must leave the output untouched on error"
            );
        }
    }

    #[test]
    fn render_into_appends() {
        let empty = BTreeMap::new();
        let data = TemplateData {
            name: "model",
            namespace: "test",
            ingress_domain: "example.com",
            annotations: &empty,
            labels: &empty,
        };
        let template: Template = "{{ .Name }}.{{ .Namespace }}".parse().unwrap();
        let mut output = String::from("https://");
        template.render_into(&data, &mut output).unwrap();
        assert_eq!(output, "https://model.test");
    }

    #[test]
    fn fields_lists_every_read_in_order() {
        let template = Template::parse(
            "{{ .Name }}{{/* x */}}{{ .Labels.app }}-{{ index .Annotations \"a.b/c\" }}\
             {{ .IngressDomain }}{{ .Name }}{{ .Namespace }}",
        )
        .unwrap();
        let fields: Vec<&Field> = template.fields().collect();
        assert_eq!(
            fields,
            [
                &Field::Name,
                &Field::Label("app".to_owned()),
                &Field::Annotation("a.b/c".to_owned()),
                &Field::IngressDomain,
                &Field::Name,
                &Field::Namespace,
            ]
        );
        assert_eq!(Template::parse("just text").unwrap().fields().count(), 0);
    }

    #[test]
    fn source_is_kept_verbatim() {
        let source = "a  {{- .Name -}}  b";
        assert_eq!(Template::parse(source).unwrap().source(), source);
    }

    #[test]
    fn field_displays_as_template_syntax() {
        let cases = [
            (Field::Name, ".Name"),
            (Field::Namespace, ".Namespace"),
            (Field::IngressDomain, ".IngressDomain"),
            (Field::Annotation("team".to_owned()), ".Annotations.team"),
            (Field::Label("_app1".to_owned()), ".Labels._app1"),
            (
                Field::Annotation("a.b/c".to_owned()),
                "index .Annotations \"a.b/c\"",
            ),
            (
                Field::Label("say \"hi\"\n".to_owned()),
                "index .Labels \"say \\\"hi\\\"\\n\"",
            ),
            (Field::Label(String::new()), "index .Labels \"\""),
            (
                Field::Label("\u{0}\u{85}".to_owned()),
                "index .Labels \"\\x00\\u0085\"",
            ),
        ];
        for (field, expected) in cases {
            assert_eq!(field.to_string(), expected);
        }
    }

    /// Well-formed actions whose keys overlap `string_map`, so rendering
    /// meets both present and missing keys.
    #[rustfmt::skip]
    const ACTIONS: &[&str] = &[
        "{{ .Name }}", "{{.Namespace}}", "{{- .IngressDomain -}}", "{{ .Annotations.team }}",
        "{{ .Labels.app -}}", "{{- index .Annotations \"a.b/c\" }}", "{{ index .Labels `x` }}",
        "{{/* comment */}}", "{{- /* comment */ -}}",
    ];

    const TEXT: &[&str] = &[" ", "\n", "\t", "x", "\u{e9}", "-", ".", "}}", "{", "}"];

    /// Loose pieces of template syntax, so generated sources also reach the
    /// parser's error paths.
    #[rustfmt::skip]
    const SYNTAX_NOISE: &[&str] = &[
        "{{", "}}", "{{- ", " -}}", "-", " ", "\n", ".", "(", ")", "|", ",", ".Name", ".Labels",
        ".Annotations", ".team", ".a.b", "index", "if", "$x", "3", "\"a.b/c\"", "`app`", "\"", "`",
        "\\", "\\x", "/*", "*/",
    ];

    fn template_source() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            3 => prop::sample::select(ACTIONS),
            2 => prop::sample::select(TEXT),
            1 => prop::sample::select(SYNTAX_NOISE),
        ];
        prop::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
    }

    fn string_map() -> impl Strategy<Value = BTreeMap<String, String>> {
        let key = prop::sample::select(vec!["team", "app", "a.b/c", "x"]).prop_map(str::to_owned);
        prop::collection::btree_map(key, any::<String>(), 0..4)
    }

    /// Whether (line, column) names a real place in `source`: an existing
    /// line, and a column at most one past that line's last character.
    fn is_position_in(source: &str, line: usize, column: usize) -> bool {
        line >= 1
            && column >= 1
            && source
                .split('\n')
                .nth(line - 1)
                .is_some_and(|text| column <= text.chars().count() + 1)
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_text(source in any::<String>()) {
            if let Err(error) = Template::parse(&source) {
                prop_assert!(is_position_in(&source, error.line, error.column), "{error}");
            }
        }

        #[test]
        fn parse_never_panics_on_template_like_text(source in template_source()) {
            if let Err(error) = Template::parse(&source) {
                prop_assert!(is_position_in(&source, error.line, error.column), "{error}");
            }
        }

        #[test]
        fn rendering_a_parsed_template_never_panics(
            source in template_source(),
            name in any::<String>(),
            namespace in any::<String>(),
            ingress_domain in any::<String>(),
            annotations in string_map(),
            labels in string_map(),
        ) {
            if let Ok(template) = Template::parse(&source) {
                let data = TemplateData {
                    name: &name,
                    namespace: &namespace,
                    ingress_domain: &ingress_domain,
                    annotations: &annotations,
                    labels: &labels,
                };
                let mut output = String::from("prefix");
                match template.render(&data) {
                    Ok(rendered) => {
                        template.render_into(&data, &mut output).unwrap();
                        prop_assert_eq!(output, format!("prefix{rendered}"));
                    }
                    Err(error) => {
                        prop_assert_eq!(template.render_into(&data, &mut output), Err(error));
                        prop_assert_eq!(output, "prefix");
                    }
                }
            }
        }

        #[test]
        fn text_without_open_delimiter_renders_verbatim(
            source in prop::collection::vec(
                prop_oneof![
                    any::<String>(),
                    prop::sample::select(vec!["{", "}", "}}", " -}}", "-", " ", "\n"]).prop_map(str::to_owned),
                ],
                0..12,
            )
            .prop_map(|pieces| pieces.concat())
            .prop_filter("must not contain {{", |source| !source.contains("{{"))
        ) {
            let empty = BTreeMap::new();
            let data = TemplateData {
                name: "n",
                namespace: "ns",
                ingress_domain: "d",
                annotations: &empty,
                labels: &empty,
            };
            let template = Template::parse(&source).unwrap();
            prop_assert_eq!(template.render(&data).unwrap(), source);
        }

        #[test]
        fn displayed_field_parses_back_to_itself(key in any::<String>(), is_label in any::<bool>()) {
            let field = if is_label { Field::Label(key) } else { Field::Annotation(key) };
            let template = Template::parse(&format!("{{{{ {field} }}}}")).unwrap();
            prop_assert_eq!(template.fields().collect::<Vec<_>>(), vec![&field]);
        }
    }
}
