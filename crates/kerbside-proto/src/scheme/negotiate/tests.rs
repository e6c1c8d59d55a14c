use super::client::{ExpectChallenge, MutualOutcome, NegotiateError, Progress};
use super::server::{read_authorization, MalformedAuthorization, Presented};
use crate::header::parse_challenges;
use crate::mechanism::{Mechanism, Step};
use crate::policy::MutualAuth;

/// A scripted mechanism: returns the given steps in order and records its inputs.
#[derive(Debug)]
struct Scripted {
    steps: Vec<Result<Step, std::io::Error>>,
    inputs: Vec<Option<Vec<u8>>>,
}

impl Scripted {
    fn new(steps: Vec<Result<Step, std::io::Error>>) -> Self {
        Self {
            steps: steps.into_iter().rev().collect(),
            inputs: Vec::new(),
        }
    }
}

impl Mechanism for Scripted {
    type Error = std::io::Error;
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, Self::Error> {
        self.inputs.push(input.map(<[u8]>::to_vec));
        self.steps
            .pop()
            .unwrap_or_else(|| Err(std::io::Error::other("script exhausted")))
    }
}

fn challenges(lines: &[&str]) -> Vec<crate::header::Challenge> {
    parse_challenges(lines.iter().map(|l| l.as_bytes())).unwrap()
}

fn start(mech: Scripted, mutual: MutualAuth) -> super::client::ExpectFinalToken<Scripted> {
    let (creds, next) = ExpectChallenge::new(mech, mutual)
        .handle_challenge(&challenges(&["Basic realm=\"x\", Negotiate"]))
        .unwrap();
    assert_eq!(creds.to_header_value(), "Negotiate AQID");
    next
}

#[test]
fn one_leg_with_verified_final_token() {
    let next = start(
        Scripted::new(vec![
            Ok(Step::Continue(vec![1, 2, 3])),
            Ok(Step::Done(None)),
        ]),
        MutualAuth::Optional,
    );
    match next
        .handle_response(200, &challenges(&["Negotiate BAU="]))
        .unwrap()
    {
        Progress::Established(e) => assert_eq!(e.mutual(), MutualOutcome::Verified),
        other => panic!("{other:?}"),
    }
}

#[test]
fn final_token_on_a_non_200_status_is_still_checked() {
    let next = start(
        Scripted::new(vec![
            Ok(Step::Continue(vec![1, 2, 3])),
            Err(std::io::Error::other("bad mic")),
        ]),
        MutualAuth::Optional,
    );
    let err = next
        .handle_response(404, &challenges(&["Negotiate BAU="]))
        .unwrap_err();
    assert!(matches!(err, NegotiateError::MutualAuthFailed(_)), "{err}");
}

#[test]
fn missing_final_token_depends_on_policy() {
    let mk = || Scripted::new(vec![Ok(Step::Continue(vec![1, 2, 3]))]);
    let ok = start(mk(), MutualAuth::Optional)
        .handle_response(200, &[])
        .unwrap();
    assert!(matches!(ok, Progress::Established(e) if e.mutual() == MutualOutcome::NotSent));
    let err = start(mk(), MutualAuth::Required)
        .handle_response(200, &[])
        .unwrap_err();
    assert!(matches!(err, NegotiateError::MutualAuthMissing));
    assert!(err.to_string().contains("--mutual optional"));
    let off = start(mk(), MutualAuth::Off)
        .handle_response(200, &challenges(&["Negotiate AA=="]))
        .unwrap();
    assert!(matches!(off, Progress::Established(e) if e.mutual() == MutualOutcome::NotChecked));
}

#[test]
fn a_401_without_token_is_a_rejection() {
    let next = start(
        Scripted::new(vec![Ok(Step::Continue(vec![1, 2, 3]))]),
        MutualAuth::Optional,
    );
    let err = next
        .handle_response(401, &challenges(&["Negotiate"]))
        .unwrap_err();
    assert!(matches!(err, NegotiateError::Rejected));
}

#[test]
fn multi_leg_continues_then_stops_at_the_leg_limit() {
    let mech = Scripted::new(vec![
        Ok(Step::Continue(vec![1, 2, 3])),
        Ok(Step::Continue(vec![9])),
        Ok(Step::Continue(vec![9])),
    ]);
    let (_, next) = ExpectChallenge::new(mech, MutualAuth::Optional)
        .with_max_legs(2)
        .handle_challenge(&challenges(&["Negotiate"]))
        .unwrap();
    let next = match next
        .handle_response(401, &challenges(&["Negotiate BAU="]))
        .unwrap()
    {
        Progress::Continue(creds, next) => {
            assert_eq!(creds.to_header_value(), "Negotiate CQ==");
            next
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(next.legs(), 2);
    let err = next
        .handle_response(401, &challenges(&["Negotiate BAU="]))
        .unwrap_err();
    assert!(matches!(err, NegotiateError::TooManyLegs(2)));
}

#[test]
fn a_challenge_without_negotiate_lists_what_was_offered() {
    let err = ExpectChallenge::new(Scripted::new(vec![]), MutualAuth::Optional)
        .handle_challenge(&challenges(&["Basic realm=\"x\"", "NTLM"]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the server did not offer Negotiate (it offered: Basic, NTLM)"
    );
}

#[test]
fn malformed_final_token_is_an_error_not_a_panic() {
    let next = start(
        Scripted::new(vec![Ok(Step::Continue(vec![1, 2, 3]))]),
        MutualAuth::Optional,
    );
    let err = next
        .handle_response(200, &challenges(&["Negotiate A"]))
        .unwrap_err();
    assert!(matches!(err, NegotiateError::MalformedToken(_)), "{err}");
}

#[test]
fn server_reads_authorization() {
    assert_eq!(read_authorization([]).unwrap(), Presented::Nothing);
    assert_eq!(
        read_authorization([&b"negotiate AQID"[..]]).unwrap(),
        Presented::Token(vec![1, 2, 3])
    );
    assert_eq!(
        read_authorization([&b"Basic YTpi"[..]]).unwrap(),
        Presented::OtherScheme("Basic".into())
    );
    assert!(matches!(
        read_authorization([&b"Negotiate"[..]]),
        Err(MalformedAuthorization::MissingToken)
    ));
    assert!(matches!(
        read_authorization([&b"Negotiate AQID"[..], &b"Negotiate AQID"[..]]),
        Err(MalformedAuthorization::Repeated)
    ));
    assert!(matches!(
        read_authorization([&b"Negotiate \"x"[..]]),
        Err(MalformedAuthorization::Syntax(_))
    ));
}

#[test]
fn a_proxy_exchange_continues_on_407_not_401() {
    let mech = Scripted::new(vec![
        Ok(Step::Continue(vec![1, 2, 3])),
        Ok(Step::Continue(vec![9])),
        Ok(Step::Done(None)),
    ]);
    let (_, next) = ExpectChallenge::new(mech, MutualAuth::Optional)
        .for_proxy()
        .handle_challenge(&challenges(&["Negotiate"]))
        .unwrap();
    let next = match next
        .handle_response(407, &challenges(&["Negotiate BAU="]))
        .unwrap()
    {
        Progress::Continue(_, next) => next,
        other => panic!("{other:?}"),
    };
    // For a proxy exchange a 401 is the origin's business: the proxy let us through.
    match next
        .handle_response(401, &challenges(&["Negotiate BAU="]))
        .unwrap()
    {
        Progress::Established(e) => assert_eq!(e.mutual(), MutualOutcome::Verified),
        other => panic!("{other:?}"),
    }
}
