//! The event adapter: one function can be invoked directly, by an EventBridge schedule,
//! through an API Gateway REST proxy integration or through a Lambda Function URL.
//! [`Inbound::classify`] finds the request inside whichever event arrived, and
//! [`EventSource::respond`] shapes the answer the way that source expects it.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
use aws_lambda_events::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use base64::Engine;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::FunctionError;

/// Where an event came from, which decides how the answer is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// `aws lambda invoke`, the console, or the backend calling the function by ARN.
    Direct,
    /// An EventBridge scheduled rule (`"detail-type": "Scheduled Event"`) or other EventBridge event.
    EventBridge,
    /// An API Gateway REST API with the Lambda proxy integration.
    ApiGateway,
    /// A Lambda Function URL (the same shape as an API Gateway HTTP API v2 event).
    FunctionUrl,
}

impl EventSource {
    pub fn is_http(self) -> bool {
        matches!(self, Self::ApiGateway | Self::FunctionUrl)
    }

    /// Shapes a handler's outcome for this source.
    ///
    /// HTTP sources always get `{statusCode, headers, body}`: the success JSON with 200, or
    /// `{"error": {"code", "message"}}` with the error's status. Direct and EventBridge invokes get
    /// the success JSON itself, or the error as a Lambda function error.
    pub fn respond<T: Serialize>(self, outcome: Result<T, FunctionError>) -> Result<Value, FunctionError> {
        let (status, body) = match outcome {
            Ok(ok) => (200, to_value(&ok)),
            Err(err) if self.is_http() => (err.status(), serde_json::json!({ "error": err.to_json() })),
            Err(err) => return Err(err),
        };
        Ok(match self {
            Self::Direct | Self::EventBridge => body,
            Self::ApiGateway => http_response_api_gateway(status, &body),
            Self::FunctionUrl => http_response_function_url(status, &body),
        })
    }
}

/// An event with its source recognised and the request payload found inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub source: EventSource,
    /// The request: the invoke payload, the EventBridge `detail`, or the HTTP body as JSON.
    /// `Err` when an HTTP body is not JSON: the source is still known, so the caller can answer 400 over HTTP.
    pub payload: Result<Value, FunctionError>,
}

impl Inbound {
    pub fn classify(event: Value) -> Self {
        let Value::Object(fields) = &event else {
            return Self { source: EventSource::Direct, payload: Ok(event) };
        };
        if fields.contains_key("detail-type") && fields.contains_key("source") {
            let payload = serde_json::from_value::<EventBridgeEvent<Value>>(event)
                .map(|ev| match ev.detail {
                    // A scheduled event's detail is `{}`; rules with a constant input invoke directly instead.
                    Value::Object(detail) if !detail.is_empty() => Value::Object(detail),
                    _ => Value::Object(Map::new()),
                })
                .map_err(|e| FunctionError::invalid("(EventBridge event)", crate::text::ends(&e.to_string())));
            return Self { source: EventSource::EventBridge, payload };
        }
        let http = fields.get("requestContext").and_then(Value::as_object);
        if http.is_some() && fields.contains_key("httpMethod") {
            let payload = serde_json::from_value::<ApiGatewayProxyRequest>(event)
                .map_err(|e| FunctionError::invalid("(API Gateway event)", crate::text::ends(&e.to_string())))
                .and_then(|req| body_json(req.body.as_deref(), req.is_base64_encoded));
            return Self { source: EventSource::ApiGateway, payload };
        }
        if http.is_some_and(|ctx| ctx.contains_key("http")) {
            let payload = serde_json::from_value::<LambdaFunctionUrlRequest>(event)
                .map_err(|e| FunctionError::invalid("(Function URL event)", crate::text::ends(&e.to_string())))
                .and_then(|req| body_json(req.body.as_deref(), req.is_base64_encoded));
            return Self { source: EventSource::FunctionUrl, payload };
        }
        Self { source: EventSource::Direct, payload: Ok(event) }
    }

    /// Parses the payload as the function's request. `null` and an empty body mean "no fields".
    pub fn request<T: DeserializeOwned>(&self) -> Result<T, FunctionError> {
        match &self.payload {
            Ok(Value::Null) => parse_request(Value::Object(Map::new())),
            Ok(payload) => parse_request(payload.clone()),
            Err(err) => Err(err.clone()),
        }
    }
}

/// Deserialises a request, naming the offending field on failure.
pub fn parse_request<T: DeserializeOwned>(payload: Value) -> Result<T, FunctionError> {
    if !payload.is_object() {
        return Err(FunctionError::invalid("(request)", format!("expected a JSON object, got {}", kind_of(&payload))));
    }
    serde_path_to_error::deserialize(payload).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { "(request)".to_owned() } else { path };
        FunctionError::invalid(crate::text::ends(&field), crate::text::ends(&err.into_inner().to_string()))
    })
}

fn body_json(body: Option<&str>, base64_encoded: bool) -> Result<Value, FunctionError> {
    let text = match body {
        None => return Ok(Value::Null),
        Some(text) if base64_encoded => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| FunctionError::invalid("body", format!("not valid base64: {e}")))?;
            String::from_utf8(bytes).map_err(|_| FunctionError::invalid("body", "not UTF-8 text"))?
        }
        Some(text) => text.to_owned(),
    };
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| FunctionError::invalid("body", format!("not valid JSON: {e}")))
}

/// How a value of the wrong type is named in a message: "a string", "an array".
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn to_value<T: Serialize>(value: &T) -> Value {
    // Our response types are plain structs of strings and numbers: serialising them cannot fail.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

fn http_response_api_gateway(status: u16, body: &Value) -> Value {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response.headers = json_headers();
    response.body = Some(Body::Text(body.to_string()));
    to_value(&response)
}

fn http_response_function_url(status: u16, body: &Value) -> Value {
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(status);
    response.headers = json_headers();
    response.body = Some(body.to_string());
    to_value(&response)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Req {
        service_name: Option<String>,
    }

    fn scheduled() -> Value {
        json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-22T23:00:00Z",
            "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/fluidity-kill-schedule"],
            "detail": {}
        })
    }

    fn api_gateway(body: Option<&str>, base64: bool) -> Value {
        json!({
            "resource": "/kill", "path": "/kill", "httpMethod": "POST",
            "headers": {"x-api-key": "k"}, "multiValueHeaders": {}, "queryStringParameters": null,
            "multiValueQueryStringParameters": null, "pathParameters": null, "stageVariables": null,
            "requestContext": {"resourcePath": "/kill", "httpMethod": "POST", "path": "/prod/kill",
                "accountId": "123456789012", "stage": "prod", "requestId": "r-1", "identity": {}},
            "body": body, "isBase64Encoded": base64
        })
    }

    fn function_url(body: Option<&str>) -> Value {
        json!({
            "version": "2.0", "rawPath": "/", "rawQueryString": "", "headers": {"content-type": "application/json"},
            "requestContext": {"accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
                "domainPrefix": "abc", "requestId": "r-2", "routeKey": "$default", "stage": "$default",
                "time": "22/Nov/2026:23:00:00 +0000", "timeEpoch": 1795388400000u64,
                "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "curl"}},
            "body": body, "isBase64Encoded": false
        })
    }

    #[test]
    fn direct_payload_is_the_request() {
        let inbound = Inbound::classify(json!({"service_name": "s"}));
        assert_eq!(inbound.source, EventSource::Direct);
        assert_eq!(inbound.request::<Req>().unwrap(), Req { service_name: Some("s".into()) });
    }

    #[test]
    fn scheduled_event_means_no_overrides() {
        let inbound = Inbound::classify(scheduled());
        assert_eq!(inbound.source, EventSource::EventBridge);
        assert_eq!(inbound.request::<Req>().unwrap(), Req::default());
    }

    #[test]
    fn api_gateway_body_is_the_request_plain_or_base64() {
        let inbound = Inbound::classify(api_gateway(Some(r#"{"service_name":"x"}"#), false));
        assert_eq!(inbound.source, EventSource::ApiGateway);
        assert_eq!(inbound.request::<Req>().unwrap().service_name.as_deref(), Some("x"));

        let encoded = base64::engine::general_purpose::STANDARD.encode(r#"{"service_name":"y"}"#);
        let inbound = Inbound::classify(api_gateway(Some(&encoded), true));
        assert_eq!(inbound.request::<Req>().unwrap().service_name.as_deref(), Some("y"));

        let inbound = Inbound::classify(api_gateway(None, false));
        assert_eq!(inbound.request::<Req>().unwrap(), Req::default());
    }

    #[test]
    fn function_url_body_is_the_request() {
        let inbound = Inbound::classify(function_url(Some("{}")));
        assert_eq!(inbound.source, EventSource::FunctionUrl);
        assert_eq!(inbound.request::<Req>().unwrap(), Req::default());
    }

    #[test]
    fn malformed_http_body_is_a_400_over_http() {
        let inbound = Inbound::classify(api_gateway(Some("{not json"), false));
        let err = inbound.request::<Req>().unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.to_string().contains("`body`: not valid JSON"), "{err}");
        let answer = inbound.source.respond::<Value>(Err(err)).unwrap();
        assert_eq!(answer["statusCode"], 400);
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "INVALID_REQUEST");
    }

    #[test]
    fn unknown_fields_and_wrong_types_name_the_field() {
        let err = Inbound::classify(json!({"service": "x"})).request::<Req>().unwrap_err();
        assert!(err.to_string().contains("unknown field `service`"), "{err}");
        let err = Inbound::classify(json!({"service_name": 5})).request::<Req>().unwrap_err();
        assert!(err.to_string().contains("`service_name`"), "{err}");
        let err = Inbound::classify(json!("kill")).request::<Req>().unwrap_err();
        assert!(err.to_string().contains("expected a JSON object, got a string"), "{err}");
    }

    #[test]
    fn http_sources_get_status_headers_and_a_json_body() {
        let ok = EventSource::FunctionUrl.respond(Ok(json!({"status": "killed"}))).unwrap();
        assert_eq!(ok["statusCode"], 200);
        assert_eq!(ok["headers"]["content-type"], "application/json");
        assert_eq!(ok["body"], r#"{"status":"killed"}"#);

        let not_found = FunctionError::ServiceNotFound { cluster: "c".into(), service: "s".into() };
        let answer = EventSource::ApiGateway.respond::<Value>(Err(not_found)).unwrap();
        assert_eq!(answer["statusCode"], 404);
    }

    #[test]
    fn direct_and_scheduled_errors_are_function_errors() {
        let err = FunctionError::ServiceNotFound { cluster: "c".into(), service: "s".into() };
        assert_eq!(EventSource::Direct.respond::<Value>(Err(err.clone())), Err(err.clone()));
        assert_eq!(EventSource::EventBridge.respond::<Value>(Err(err.clone())), Err(err));
        assert_eq!(EventSource::Direct.respond(Ok(json!({"a": 1}))).unwrap(), json!({"a": 1}));
    }
}
