//! A job message written back as a workflow is one our own loader accepts: one job with its
//! matrix combination, env, outputs and every kind of step.

use hr_github::JobMessage;
use serde_json::json;

#[test]
fn the_workflow_of_a_job_message_loads_with_its_steps_and_matrix() {
    let message = json!({
        "plan": {"planId": "p"},
        "jobId": "j",
        "jobDisplayName": "test (ubuntu, 20)",
        "jobName": "test",
        "resources": {"endpoints": [{"name": "SystemVssConnection", "url": "http://x/", "authorization": {"parameters": {"AccessToken": "t"}}}]},
        "contextData": {
            "github": {"t": 2, "d": [{"k": "workflow", "v": "Tests"}]},
            "matrix": {"t": 2, "d": [{"k": "os", "v": "ubuntu"}, {"k": "node", "v": {"t": 4, "n": 20}}]}
        },
        "environmentVariables": [{"type": 2, "map": [{"key": "NODE", "value": {"type": 3, "expr": "matrix.node"}}]}],
        "jobOutputs": {"type": 2, "map": [{"key": "v", "value": {"type": 3, "expr": "steps.say.outputs.v"}}]},
        "steps": [
            {"type": "action", "contextName": "__actions_checkout", "reference": {"type": "repository", "name": "actions/checkout", "ref": "v4"}},
            {"type": "action", "contextName": "say", "reference": {"type": "script"}, "condition": "success()",
             "inputs": {"type": 2, "map": [{"key": "script", "value": "echo v=$NODE >> $GITHUB_OUTPUT"}]}},
            {"type": "action", "contextName": "__docker", "reference": {"type": "containerRegistry", "image": "alpine:3"}}
        ]
    });
    let job = JobMessage::parse(&message).unwrap();
    let yaml = job.workflow_yaml().unwrap();
    let workflow =
        workflows::model::load(&yaml, "job.yml").unwrap_or_else(|e| panic!("{e:?}\n{yaml}"));
    assert_eq!(workflow.jobs.len(), 1);
    let loaded = &workflow.jobs[0];
    assert_eq!(loaded.id.value, "test");
    assert_eq!(loaded.steps.len(), 3, "{yaml}");
    assert!(yaml.contains("include:"), "{yaml}");
}
