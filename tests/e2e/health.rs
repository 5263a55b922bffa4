use keygate_e2e::{get, shared};

#[test]
fn health_answers_with_the_endpoint_environment() {
    let worker = shared();
    let answer = get(&worker.url("/v1/health"), &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["environment"], "live");
}

#[test]
fn unknown_keygate_routes_are_problem_json() {
    let worker = shared();
    get(&worker.url("/v1/no-such-route"), &[]).expect_problem(404, "NOT_FOUND");
}
