//! Recording metadata (`application/rs-metadata+xml`, RFC 7865) and the
//! pre-RFC draft forms recording clients still send: who takes part, which
//! streams there are, and who sends which.
//!
//! Read with a bounded XML reader: no DTD (refused), no entities but
//! XML's five and character references, limits on size, depth, elements
//! and text. Elements of other namespaces (vendor extension data) are
//! skipped whole.

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use crate::Error;

/// Longest metadata document.
pub const MAX_METADATA_LEN: usize = 64 << 10;
/// Deepest element nesting.
pub const MAX_DEPTH: usize = 32;
/// Most elements in one document.
pub const MAX_ELEMENTS: usize = 4096;
/// Most participants, and most streams.
pub const MAX_PARTICIPANTS: usize = 64;
/// Longest text or attribute value kept.
pub const MAX_TEXT_LEN: usize = 1024;

/// The namespaces read as recording metadata: RFC 7865's and the drafts'.
pub const NAMESPACES: [&str; 3] = [
    "urn:ietf:params:xml:ns:recording:1",
    "urn:ietf:params:xml:ns:recording",
    "urn:ietf:params:xml:ns:siprec",
];

/// A participant: one party of the recorded call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Participant {
    /// `participant_id` (draft: `id`).
    pub id: String,
    /// The address of record (`nameID aor=`, draft: `<aor>`), e.g.
    /// `sip:alice@example.com`.
    pub aor: Option<String>,
    /// The display name (`<name>`).
    pub name: Option<String>,
    /// The ids of the streams it sends.
    pub sends: Vec<String>,
    /// The ids of the streams it receives.
    pub receives: Vec<String>,
}

/// A media stream of the recording session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stream {
    /// `stream_id` (draft: `id`).
    pub id: String,
    /// The SDP `a=label` it is carried in.
    pub label: Option<String>,
}

/// What one rs-metadata document says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Metadata {
    /// The namespace it was written in (one of [`NAMESPACES`], or empty for
    /// a document without one).
    pub namespace: String,
    /// The participants, in document order.
    pub participants: Vec<Participant>,
    /// The streams, in document order.
    pub streams: Vec<Stream>,
}

fn xml_error(offset: u64, reason: impl core::fmt::Display) -> Error {
    Error::Xml {
        offset,
        reason: reason.to_string(),
    }
}

/// The value of the first attribute whose local name is one of `names`.
fn attribute(
    element: &BytesStart<'_>,
    names: &[&str],
    offset: u64,
) -> Result<Option<String>, Error> {
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|e| xml_error(offset, e))?;
        let local = attribute.key.local_name();
        if names.iter().any(|n| n.as_bytes() == local.as_ref()) {
            let value = attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| xml_error(offset, e))?;
            return Ok(Some(bounded(value.trim())?));
        }
    }
    Ok(None)
}

fn bounded(text: &str) -> Result<String, Error> {
    if text.len() > MAX_TEXT_LEN {
        return Err(Error::TooLong {
            what: "metadata text",
            max: MAX_TEXT_LEN,
        });
    }
    Ok(text.to_owned())
}

/// Where the reader is: the recording vocabulary's element names from
/// the root down.
#[derive(Default)]
struct Path(Vec<String>);

impl Path {
    /// Whether the reader is at `below` under the root element (names
    /// compared ignoring ASCII case: `nameID`, `nameid`).
    fn is(&self, below: &[&str]) -> bool {
        self.0.len() == below.len() + 1
            && self.0[1..]
                .iter()
                .zip(below)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

/// The root elements of recording metadata: RFC 7865's, and the
/// `siprec` draft's (BroadWorks), where `<recording>` is a child.
const ROOTS: [&str; 2] = ["recording", "recording_metadata"];

impl Metadata {
    /// Reads an rs-metadata document.
    ///
    /// # Errors
    /// [`Error::Xml`] for XML that is not well-formed or has a DTD,
    /// [`Error::Metadata`] when its root is not `<recording>` of a
    /// recording namespace or a participant or stream has no id,
    /// [`Error::TooLong`]/[`Error::TooMany`] past the limits.
    pub fn parse(xml: &[u8]) -> Result<Self, Error> {
        if xml.len() > MAX_METADATA_LEN {
            return Err(Error::TooLong {
                what: "rs-metadata",
                max: MAX_METADATA_LEN,
            });
        }
        let mut reader = NsReader::from_reader(xml);
        // End names are checked here for the recording vocabulary; inside
        // skipped vendor data they are not.
        reader.config_mut().check_end_names = false;
        let mut metadata = Self::default();
        let mut path = Path::default();
        let mut elements = 0usize;
        let mut text = String::new();
        let mut saw_root = false;
        let mut current = None;
        loop {
            let offset = reader.buffer_position();
            let (namespace, event) = reader
                .read_resolved_event()
                .map_err(|e| xml_error(offset, e))?;
            let ours = match &namespace {
                ResolveResult::Bound(ns) => NAMESPACES.iter().any(|n| n.as_bytes() == ns.as_ref()),
                ResolveResult::Unbound => true,
                ResolveResult::Unknown(prefix) => {
                    return Err(xml_error(
                        offset,
                        format!(
                            "namespace prefix {:?} is not declared",
                            String::from_utf8_lossy(prefix)
                        ),
                    ));
                }
            };
            let namespace = match namespace {
                ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
                _ => String::new(),
            };
            match event {
                Event::DocType(_) => return Err(xml_error(offset, "a DTD is not accepted")),
                Event::Start(ref e) | Event::Empty(ref e) => {
                    elements += 1;
                    if elements > MAX_ELEMENTS {
                        return Err(Error::TooMany {
                            what: "metadata elements",
                            max: MAX_ELEMENTS,
                        });
                    }
                    let empty = matches!(event, Event::Empty(_));
                    let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                    if !saw_root {
                        if !ROOTS.contains(&local.as_str()) || !ours {
                            return Err(Error::Metadata(format!(
                                "the root element is <{local}> of namespace {namespace:?}, not <recording> of {}",
                                NAMESPACES[0]
                            )));
                        }
                        saw_root = true;
                        metadata.namespace = namespace;
                    } else if !ours || path.0.last().is_some_and(|p| p == "extensiondata") {
                        // Vendor extension data: skipped whole (its end
                        // found by name, so that markup a vendor left
                        // unescaped inside it does not matter).
                        if !empty {
                            let end = e.to_end().into_owned();
                            reader
                                .read_to_end(end.name())
                                .map_err(|e| xml_error(offset, e))?;
                        }
                        continue;
                    }
                    path.0.push(local);
                    if path.0.len() > MAX_DEPTH {
                        return Err(Error::TooMany {
                            what: "levels of nested metadata elements",
                            max: MAX_DEPTH,
                        });
                    }
                    metadata.start(&path, e, offset, &mut current)?;
                    text.clear();
                    if empty {
                        path.0.pop();
                    }
                }
                Event::Text(t) => {
                    let decoded = t.decode().map_err(|e| xml_error(offset, e))?;
                    push_text(&mut text, &decoded)?;
                }
                Event::CData(t) => {
                    let decoded = t.decode().map_err(|e| xml_error(offset, e))?;
                    push_text(&mut text, &decoded)?;
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref().map_err(|e| xml_error(offset, e))? {
                        Some(c) => c,
                        None => match r.as_ref() {
                            b"lt" => '<',
                            b"gt" => '>',
                            b"amp" => '&',
                            b"apos" => '\'',
                            b"quot" => '"',
                            other => {
                                return Err(xml_error(
                                    offset,
                                    format!(
                                        "entity &{};  is not one of XML's five",
                                        String::from_utf8_lossy(other)
                                    ),
                                ));
                            }
                        },
                    };
                    push_text(&mut text, resolved.encode_utf8(&mut [0; 4]))?;
                }
                Event::End(ref e) => {
                    let local = e.local_name();
                    if path.0.last().map(String::as_bytes) != Some(local.as_ref()) {
                        return Err(xml_error(
                            offset,
                            format!(
                                "</{}> where </{}> belongs",
                                String::from_utf8_lossy(e.name().as_ref()),
                                path.0.last().map_or("", String::as_str)
                            ),
                        ));
                    }
                    metadata.end(&path, text.trim(), current)?;
                    text.clear();
                    path.0.pop();
                }
                Event::Eof => {
                    if let Some(open) = path.0.last() {
                        return Err(xml_error(
                            offset,
                            format!("the document ends inside <{open}>"),
                        ));
                    }
                    break;
                }
                _ => {}
            }
        }
        if !saw_root {
            return Err(Error::Metadata("no <recording> element".to_owned()));
        }
        Ok(metadata)
    }

    /// An element of the vocabulary starts at `path`.
    /// `current` is the participant whose element the reader is in.
    fn start(
        &mut self,
        path: &Path,
        e: &BytesStart<'_>,
        offset: u64,
        current: &mut Option<usize>,
    ) -> Result<(), Error> {
        let id = |names: &[&str], what: &str| -> Result<String, Error> {
            attribute(e, names, offset)?
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    Error::Metadata(format!("a <{what}> at byte {offset} has no {}", names[0]))
                })
        };
        if path.is(&["participant"]) {
            let id = id(&["participant_id", "id"], "participant")?;
            *current = Some(self.participant(&id)?);
        } else if path.is(&["stream"]) {
            let id = id(&["stream_id", "id"], "stream")?;
            if !self.streams.iter().any(|s| s.id == id) {
                if self.streams.len() == MAX_PARTICIPANTS {
                    return Err(Error::TooMany {
                        what: "streams",
                        max: MAX_PARTICIPANTS,
                    });
                }
                self.streams.push(Stream { id, label: None });
            }
        } else if path.is(&["participantstreamassoc"]) {
            let id = id(&["participant_id", "id"], "participantstreamassoc")?;
            *current = Some(self.participant(&id)?);
        } else if path.is(&["participant", "nameID"]) {
            if let (Some(aor), Some(p)) = (attribute(e, &["aor"], offset)?, *current) {
                self.participants[p].aor = Some(aor);
            }
        }
        Ok(())
    }

    /// The index of the participant a `participant` or
    /// `participantstreamassoc` element names, added when new.
    fn participant(&mut self, id: &str) -> Result<usize, Error> {
        let index = match self.participants.iter().position(|p| p.id == id) {
            Some(index) => index,
            None => {
                if self.participants.len() == MAX_PARTICIPANTS {
                    return Err(Error::TooMany {
                        what: "participants",
                        max: MAX_PARTICIPANTS,
                    });
                }
                self.participants.push(Participant {
                    id: id.to_owned(),
                    ..Participant::default()
                });
                self.participants.len() - 1
            }
        };
        Ok(index)
    }

    /// An element of the vocabulary ends at `path` with `text`.
    fn end(&mut self, path: &Path, text: &str, current: Option<usize>) -> Result<(), Error> {
        if text.is_empty() {
            return Ok(());
        }
        let text = bounded(text)?;
        if path.is(&["stream", "label"]) {
            if let Some(stream) = self.streams.last_mut() {
                stream.label = Some(text);
            }
            return Ok(());
        }
        let Some(p) = current.and_then(|p| self.participants.get_mut(p)) else {
            return Ok(());
        };
        if path.is(&["participant", "nameID", "name"]) || path.is(&["participant", "name"]) {
            p.name = Some(text);
        } else if path.is(&["participant", "aor"]) || path.is(&["participant", "nameID", "aor"]) {
            p.aor = Some(text);
        } else {
            let under = |word: &str| {
                ["participant", "participantstreamassoc"]
                    .iter()
                    .any(|at| path.is(&[at, word]) || path.is(&[at, word, "id"]))
            };
            let ids = if under("send") {
                &mut p.sends
            } else if under("recv") {
                &mut p.receives
            } else {
                return Ok(());
            };
            if !ids.contains(&text) && ids.len() < MAX_PARTICIPANTS {
                ids.push(text);
            }
        }
        Ok(())
    }

    /// Bytes of text it keeps (ids, addresses, names, labels): what a
    /// session's metadata is bounded by.
    pub fn size(&self) -> usize {
        let ids = |v: &[String]| v.iter().map(String::len).sum::<usize>();
        let participants: usize = self
            .participants
            .iter()
            .map(|p| {
                p.id.len()
                    + p.aor.as_ref().map_or(0, String::len)
                    + p.name.as_ref().map_or(0, String::len)
                    + ids(&p.sends)
                    + ids(&p.receives)
            })
            .sum();
        let streams: usize = self
            .streams
            .iter()
            .map(|s| s.id.len() + s.label.as_ref().map_or(0, String::len))
            .sum();
        self.namespace.len() + participants + streams
    }

    /// The participant that sends the stream carried in SDP label `label`.
    pub fn sender_of_label(&self, label: &str) -> Option<&Participant> {
        let stream = self
            .streams
            .iter()
            .find(|s| s.label.as_deref() == Some(label))?;
        self.participants
            .iter()
            .find(|p| p.sends.contains(&stream.id))
    }

    /// Takes a later document (from a re-INVITE or UPDATE, RFC 7866 §7.2)
    /// into this one: participants and streams are matched by id; what the
    /// later one says about them replaces what was said, new ones are
    /// added.
    pub fn update(&mut self, later: Self) {
        for p in later.participants {
            if let Some(q) = self.participants.iter_mut().find(|q| q.id == p.id) {
                q.aor = p.aor.or(q.aor.take());
                q.name = p.name.or(q.name.take());
                if !p.sends.is_empty() || !p.receives.is_empty() {
                    q.sends = p.sends;
                    q.receives = p.receives;
                }
            } else if self.participants.len() < MAX_PARTICIPANTS {
                self.participants.push(p);
            }
        }
        for s in later.streams {
            if let Some(t) = self.streams.iter_mut().find(|t| t.id == s.id) {
                t.label = s.label.or(t.label.take());
            } else if self.streams.len() < MAX_PARTICIPANTS {
                self.streams.push(s);
            }
        }
    }
}

fn push_text(text: &mut String, more: &str) -> Result<(), Error> {
    if text.len() + more.len() > MAX_TEXT_LEN {
        return Err(Error::TooLong {
            what: "metadata text",
            max: MAX_TEXT_LEN,
        });
    }
    text.push_str(more);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <datamode>complete</datamode>
  <session session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2</sipSessionID>
  </session>
  <participant participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <nameID aor="sip:alice@atlanta.com"><name xml:lang="it">Alice &amp; Co</name></nameID>
  </participant>
  <participant participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <nameID aor="sip:bob@biloxy.com"><name xml:lang="it">Bob</name></nameID>
  </participant>
  <stream stream_id="UAAMm5GRQKSCMVvLyl4rFw==" session_id="hVpd7YQgRW2nD22h7q60JQ=="><label>96</label></stream>
  <stream stream_id="i1Pz3to5hGk8fuXl+PbwCw==" session_id="hVpd7YQgRW2nD22h7q60JQ=="><label>97</label></stream>
  <participantstreamassoc participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <send>i1Pz3to5hGk8fuXl+PbwCw==</send><recv>UAAMm5GRQKSCMVvLyl4rFw==</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <send>UAAMm5GRQKSCMVvLyl4rFw==</send><recv>i1Pz3to5hGk8fuXl+PbwCw==</recv>
  </participantstreamassoc>
  <vendor:extra xmlns:vendor="urn:example:vendor"><name>not a participant</name><stream id="x"/></vendor:extra>
</recording>"#;

    #[test]
    fn the_rfc_form_gives_participants_streams_and_senders() {
        let m = Metadata::parse(RFC.as_bytes()).unwrap();
        assert_eq!(m.namespace, NAMESPACES[0]);
        assert_eq!(m.participants.len(), 2);
        assert_eq!(
            m.participants[0].aor.as_deref(),
            Some("sip:alice@atlanta.com")
        );
        assert_eq!(m.participants[0].name.as_deref(), Some("Alice & Co"));
        assert_eq!(m.streams.len(), 2, "the vendor's stream is skipped");
        assert_eq!(
            m.sender_of_label("97").unwrap().aor.as_deref(),
            Some("sip:alice@atlanta.com")
        );
        assert_eq!(
            m.sender_of_label("96").unwrap().name.as_deref(),
            Some("Bob")
        );
        assert!(m.sender_of_label("98").is_none());
    }

    #[test]
    fn the_draft_form_with_ids_aor_and_send_inside_the_participant() {
        let draft = br#"<recording xmlns="urn:ietf:params:xml:ns:recording"><participant id="p1"><aor>sip:1001@pbx</aor><name>Ann</name><send>s1</send></participant><stream id="s1"><label>1</label></stream></recording>"#;
        let m = Metadata::parse(draft).unwrap();
        assert_eq!(m.namespace, NAMESPACES[1]);
        let ann = m.sender_of_label("1").unwrap();
        assert_eq!(
            (ann.aor.as_deref(), ann.name.as_deref()),
            (Some("sip:1001@pbx"), Some("Ann"))
        );
    }

    #[test]
    fn refusals_name_what_was_wrong() {
        let e = |xml: &str| Metadata::parse(xml.as_bytes()).unwrap_err().to_string();
        assert!(
            e("<!DOCTYPE r [<!ENTITY a \"b\">]><recording/>").contains("a DTD is not accepted")
        );
        assert!(
            e("<recording xmlns='urn:ietf:params:xml:ns:recording:1'>&a;</recording>")
                .contains("entity &a;")
        );
        assert!(e("<other/>").contains("the root element is <other>"));
        assert!(e("<recording><participant/></recording>").contains("has no participant_id"));
        assert!(e("<recording><a>").starts_with("rs-metadata at byte"));
        let deep = format!("<recording>{}", "<x>".repeat(40));
        assert!(e(&deep).contains("levels of nested"));
    }

    #[test]
    fn a_later_document_updates_by_id() {
        let mut m = Metadata::parse(RFC.as_bytes()).unwrap();
        let later = br#"<recording xmlns='urn:ietf:params:xml:ns:recording:1'><participant participant_id="zSfPoSvdSDCmU3A3TRDxAw=="><nameID aor="sip:carol@biloxy.com"><name>Carol</name></nameID></participant></recording>"#;
        m.update(Metadata::parse(later).unwrap());
        assert_eq!(
            m.sender_of_label("96").unwrap().name.as_deref(),
            Some("Carol")
        );
        assert_eq!(m.participants.len(), 2);
    }
}
