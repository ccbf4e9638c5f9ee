//! Real SIPREC offers from public sources (see `corpus/SOURCES.md`): each
//! is read, its audio streams answered `recvonly` (or `inactive` on hold),
//! and each stream's sender found where the metadata says.

use callrec_siprec::{Direction, RecordingOffer, SessionDescription, answer};

/// File, offered `m=` lines, audio streams answered with a port, and the
/// aor of the first stream's sender (`None`: the metadata associates no
/// participant with it; checked by hand against each file).
const EXPECTED: &[(&str, usize, usize, Option<&str>)] = &[
    (
        "audiocodes-mediant-sbc-crlf-two-streams",
        2,
        2,
        Some("+18888888888@fakeip.com"),
    ),
    (
        "cisco-cube-mediaproxy-doc-two-streams",
        2,
        2,
        Some("sip:3478@8.41.17.71"),
    ),
    (
        "drachtio-acme-sbc-two-streams",
        2,
        2,
        Some("sip:9000@192.168.50.102"),
    ),
    (
        "drachtio-asbce-rfc-ns-send-only-assoc-two-streams",
        2,
        2,
        Some("sip:9878942259@212.188.68.145"),
    ),
    (
        "drachtio-avaya-oracle-sbc-ucid-two-streams",
        2,
        2,
        Some("sip:31624895902@10.10.128.62"),
    ),
    ("drachtio-cisco-cube-inactive-hold-reoffer", 2, 2, None),
    (
        "drachtio-cisco-cube-three-parts-gtd-no-close",
        2,
        2,
        Some("sip:7301@35.162.237.204"),
    ),
    (
        "drachtio-connectel-opensips-two-streams-no-c-t-lines",
        2,
        2,
        None,
    ),
    (
        "drachtio-intrado-asterisk-viper-one-stream",
        1,
        1,
        Some("4058327108@10.105.190.136:5060"),
    ),
    (
        "drachtio-procomm-sems-string-labels-no-close",
        2,
        2,
        Some("sip:016190200@87.252.209.116"),
    ),
    (
        "drachtio-sonus-tns-prefix-calldata-no-close",
        2,
        2,
        Some("2249888012@172.16.195.72"),
    ),
    (
        "miarec-broadworks-siprec-ns-mixed-one-stream",
        1,
        1,
        Some("sip:86074075017412@cloudcalling-e.onestreamnetworks.com"),
    ),
    (
        "miarec-metaswitch-recording-ns-one-stream-no-direction",
        1,
        1,
        Some("7602922410"),
    ),
    (
        "miarec-webex-broadworks-metadata-first-one-mline",
        1,
        1,
        Some("sip:kculs9klre@44936045.int10.bcld.webex.com"),
    ),
    (
        "vorpalnet-oracle-sbc-genesys-four-streams-two-inactive",
        4,
        4,
        Some("sip:Genesys@192.0.2.121"),
    ),
];

fn load(name: &str) -> (String, Vec<u8>) {
    let path = format!("{}/tests/corpus/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let (content_type, body) = text.split_once("\n----BODY----\n").expect(&path);
    // The SIPp scenarios' placeholders, as SIPp fills them in.
    let body = body
        .replace("[local_ip]", "192.0.2.1")
        .replace("[auto_media_port]", "20000")
        .replace("[call_id]", "1-2@192.0.2.1");
    (content_type.trim().to_owned(), body.into_bytes())
}

#[test]
fn every_corpus_offer_is_read_and_answered() {
    for &(name, media, accepted, first_sender) in EXPECTED {
        let (content_type, body) = load(name);
        let offer =
            RecordingOffer::parse(&content_type, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ports: Vec<Option<u16>> = (0..offer.sdp.media.len())
            .map(|i| Some(40000 + 2 * i as u16))
            .collect();
        let text = answer(&offer.sdp, "192.0.2.10".parse().unwrap(), &ports, 1, 1).unwrap();
        let answered = SessionDescription::parse(text.as_bytes()).unwrap();
        let taken = answered.media.iter().filter(|m| m.port != 0).count();
        for (offered, answered) in offer.sdp.media.iter().zip(&answered.media) {
            assert_eq!(offered.label, answered.label, "{name}");
            let expected = match offered.direction {
                Direction::Inactive | Direction::RecvOnly => Direction::Inactive,
                _ if answered.port == 0 => Direction::Inactive,
                _ => Direction::RecvOnly,
            };
            assert_eq!(answered.direction, expected, "{name}");
        }
        assert!(
            offer.metadata_error.is_none(),
            "{name}: {:?}",
            offer.metadata_error
        );
        assert_eq!(offer.sdp.media.len(), media, "{name}");
        assert_eq!(taken, accepted, "{name}");
        let sender = offer.sender(0).and_then(|p| p.aor.as_deref());
        assert_eq!(sender, first_sender, "{name}");
    }
}

/// Not an offer: the AWS documentation's example has no boundary lines.
#[test]
fn a_body_without_its_boundary_is_refused_with_the_boundary_named() {
    let (content_type, body) = load("aws-chime-doc-rfc-style-av-elided-no-boundaries");
    let e = RecordingOffer::parse(&content_type, &body).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the body has no part delimited by --"),
        "{e}"
    );
}
