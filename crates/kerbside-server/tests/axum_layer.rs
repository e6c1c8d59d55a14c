//! `NegotiateLayer` in a plain axum `Router` (`layer` and `route_layer`), without the
//! gate: refusals are responses (the router's error stays `Infallible`), the
//! `Authenticated` extractor, and what happens without `PerConnection` when the
//! settings need one. No KDC: Basic against an htpasswd file stands in for a login
//! (the Kerberos logins run in crates/kerbside/tests/axum_example.rs against a real KDC).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode, Version};
use kerbside_server::passwords::BasicUsers;
use kerbside_server::{
    AuthMode, Authenticated, ConfigError, ConnectionSupply, Http11Required, NegotiateLayer,
    PerConnection,
};
use tower::ServiceExt;

/// `htpasswd -bnB -C 5 alice 'correct horse'`.
const HTPASSWD: &str = "alice:$2y$05$0.YH9lbjf3bI2SNmki4eD.QICHuT4fe26GY2XHDgeI/THJ9dHECvi\n";
/// `alice:correct horse`, base64.
const ALICE: &str = "Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==";

fn users(dir: &tempfile::TempDir) -> BasicUsers {
    let path = dir.path().join("htpasswd");
    std::fs::write(&path, HTPASSWD).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    BasicUsers::load(&path).unwrap()
}

fn layer(dir: &tempfile::TempDir, mode: AuthMode) -> NegotiateLayer {
    NegotiateLayer::builder()
        .basic_users(users(dir), "test")
        .allow_basic_over_plain_http()
        .mode(mode)
        .per_connection(ConnectionSupply::AxumConnectInfo)
        .build()
        .unwrap()
}

async fn private(who: Authenticated) -> String {
    format!("{} {} {:?}", who.principal, who.scheme.name(), who.realm)
}

async fn public(who: Option<Authenticated>) -> String {
    who.map_or("stranger".to_owned(), |w| w.principal)
}

async fn call(app: Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, String, bool) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let marked = response.extensions().get::<Http11Required>().is_some();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (
        status,
        headers,
        String::from_utf8_lossy(&body).into_owned(),
        marked,
    )
}

fn get_req(path: &str, authorization: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(path);
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn router_layer_answers_refusals_itself_and_hands_the_identity_to_the_extractor() {
    let dir = tempfile::tempdir().unwrap();
    let app = Router::new()
        .route("/private", get(private))
        .layer(layer(&dir, AuthMode::PerRequest));

    let (status, headers, body, _) = call(app.clone(), get_req("/private", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let challenge = headers.get("www-authenticate").unwrap().to_str().unwrap();
    assert!(challenge.starts_with("Basic realm=\"test\""), "{challenge}");

    let (status, _, body, _) = call(app.clone(), get_req("/private", Some("Negotiate !!!"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, _, body, _) = call(
        app.clone(),
        get_req("/private", Some("Basic YWxpY2U6d3Jvbmc=")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong password: {body}");

    let (status, _, body, _) = call(app, get_req("/private", Some(ALICE))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "alice Basic None");
}

#[tokio::test]
async fn route_layer_leaves_other_routes_open_and_the_extractor_refuses_without_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    let app = Router::new()
        .route("/private", get(private))
        .route_layer(layer(&dir, AuthMode::PerRequest))
        .route("/", get(public))
        .route("/unguarded", get(private));

    let (status, _, body, _) = call(app.clone(), get_req("/", None)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "stranger"));
    // A handler that needs an identity, on a route the layer does not cover: 401 from
    // the extractor, which says why.
    let (status, _, body, _) = call(app.clone(), get_req("/unguarded", Some(ALICE))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("NegotiateLayer"), "{body}");
    let (status, _, body, _) = call(app, get_req("/private", Some(ALICE))).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "alice Basic None")
    );
}

#[tokio::test]
async fn connection_mode_needs_per_connection_and_keeps_the_login_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = Router::new()
        .route("/private", get(private))
        .layer(layer(&dir, AuthMode::Connection));

    // The builder was told axum's connect-info supplies PerConnection, but this request
    // has none (served without it): a clear refusal (503, logged), never a silent
    // anonymous pass.
    let (status, _, _, _) = call(app.clone(), get_req("/private", Some(ALICE))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // With one (what axum's connect-info or a hyper accept loop puts there).
    let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let connection = PerConnection::new(peer);
    let with = |mut req: Request<Body>, conn: &PerConnection| {
        req.extensions_mut().insert(conn.clone());
        req
    };
    let (status, _, body, _) = call(
        app.clone(),
        with(get_req("/private", Some(ALICE)), &connection),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "alice Basic None")
    );

    // HTTP/2 cannot carry connection-bound logins: a request that needs one gets 421,
    // marked for servers that can reset the stream with HTTP_1_1_REQUIRED (Basic, a
    // per-request scheme, works over HTTP/2 as in the gate).
    let mut h2 = with(get_req("/private", None), &connection);
    *h2.version_mut() = Version::HTTP_2;
    let (status, _, _, marked) = call(app, h2).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    assert!(marked);
    let reset = kerbside_server::http11_required_as_error::<_, std::convert::Infallible>(Ok(
        http::Response::builder()
            .extension(Http11Required)
            .body(())
            .unwrap(),
    ));
    assert!(reset.is_err());
}

#[test]
fn the_builder_refuses_basic_on_plain_http_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let err = NegotiateLayer::builder()
        .basic_users(users(&dir), "test")
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::BasicWithoutTls);
    assert!(err.to_string().contains("served_over_tls"), "{err}");
}

#[test]
fn the_builder_refuses_a_connection_bound_layer_without_a_per_connection_supply() {
    let dir = tempfile::tempdir().unwrap();
    let err = NegotiateLayer::builder()
        .basic_users(users(&dir), "test")
        .allow_basic_over_plain_http()
        .mode(AuthMode::Connection)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        ConfigError::NoPerConnection {
            needs: "connection mode"
        }
    );
    // The message names what to add, both ways.
    let message = err.to_string();
    assert!(
        message.contains("per_connection(ConnectionSupply::AxumConnectInfo)")
            && message.contains("into_make_service_with_connect_info::<PerConnection>()")
            && message.contains("per_connection(ConnectionSupply::Layer)"),
        "{message}"
    );
    // Per request, nothing is kept with the connection: no supply needed.
    assert!(NegotiateLayer::builder()
        .basic_users(users(&dir), "test")
        .allow_basic_over_plain_http()
        .build()
        .is_ok());
}
