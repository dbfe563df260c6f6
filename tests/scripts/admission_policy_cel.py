"""Evaluates the ValidatingAdmissionPolicy of `hybrid-runner generate-manifests
--admission-policy` (a JSON List on stdin) with cel-python, the way the API server applies
it: match conditions, then variables, then validations. Prints one line per case and exits
with the number of cases whose verdict differs from the expected one.

Usage: admission_policy_cel.py NAMESPACE NAME < list.json
"""

import json
import sys

import celpy
from celpy import celtypes, json_to_cel


def main() -> int:
    namespace, name = sys.argv[1], sys.argv[2]
    items = json.load(sys.stdin)["items"]
    policy = next(i for i in items if i["kind"] == "ValidatingAdmissionPolicy")["spec"]
    env = celpy.Environment()

    def run(expression, activation):
        return env.program(env.compile(expression)).evaluate(activation)

    def constrained(group, resource, subresource, operation):
        # matchConstraints.resourceRules: a request no rule names is not evaluated.
        name = f"{resource}/{subresource}" if subresource else resource
        for rule in policy["matchConstraints"]["resourceRules"]:
            if (operation in rule["operations"] or "*" in rule["operations"]) and (
                group in rule["apiGroups"] or "*" in rule["apiGroups"]
            ) and (name in rule["resources"] or "*" in rule["resources"]):
                return True
        return False

    def admit(user, resource, operation, obj, old, namespace_object, subresource=""):
        group = {"jobs": "batch", "leases": "coordination.k8s.io"}.get(resource, "")
        if not constrained(group, resource, subresource, operation):
            return "not matched"
        request = {
            "userInfo": {"username": user},
            "resource": {"group": group, "resource": resource},
            "subResource": subresource,
            "operation": operation,
        }
        activation = {
            "request": json_to_cel(request),
            "object": json_to_cel(obj),
            "oldObject": json_to_cel(old),
            "namespaceObject": json_to_cel(namespace_object),
            "variables": celtypes.MapType({}),
        }
        for condition in policy.get("matchConditions", []):
            if not bool(run(condition["expression"], activation)):
                return "not matched"
        values = {}
        for variable in policy.get("variables", []):
            values[celtypes.StringType(variable["name"])] = run(variable["expression"], activation)
            activation["variables"] = celtypes.MapType(values)
        for validation in policy["validations"]:
            try:
                result = run(validation["expression"], activation)
                if not (isinstance(result, celtypes.BoolType) and bool(result)):
                    return "denied"
            except Exception as error:  # an evaluation error denies (failurePolicy: Fail)
                return f"denied ({error})"
        return "allowed"

    runner = f"system:serviceaccount:{namespace}:{name}"
    build = {"metadata": {"name": "hr-1-a", "labels": {"app.kubernetes.io/managed-by": "hybrid-runner", "pod-security.kubernetes.io/enforce": "baseline"}}}
    unenforced = {"metadata": {"name": "hr-1-b", "labels": {"app.kubernetes.io/managed-by": "hybrid-runner"}}}
    privileged = {"metadata": {"name": "hr-1-c", "labels": {"app.kubernetes.io/managed-by": "hybrid-runner", "pod-security.kubernetes.io/enforce": "privileged"}}}
    restricted = {"metadata": {"name": "hr-1-d", "labels": {"app.kubernetes.io/managed-by": "hybrid-runner", "pod-security.kubernetes.io/enforce": "restricted"}}}
    exec_options = {"kind": "PodExecOptions", "command": ["sh"]}
    system = {"metadata": {"name": "kube-system", "labels": {"kubernetes.io/metadata.name": "kube-system"}}}
    own = {"metadata": {"name": namespace, "labels": {"app.kubernetes.io/name": "hybrid-runner"}}}
    bare = {"metadata": {"name": "bare"}}
    helm = {"metadata": {"name": "shop", "labels": {"app.kubernetes.io/managed-by": "Helm"}}}
    obj = {"metadata": {"name": "x"}}
    cases = [
        ("create a build namespace", (runner, "namespaces", "CREATE", build, None, None), "allowed"),
        ("create an unlabelled namespace", (runner, "namespaces", "CREATE", bare, None, None), "denied"),
        ("delete a build namespace", (runner, "namespaces", "DELETE", None, build, None), "allowed"),
        ("delete kube-system", (runner, "namespaces", "DELETE", None, system, None), "denied"),
        ("delete a namespace another tool manages", (runner, "namespaces", "DELETE", None, helm, None), "denied"),
        ("create a pod in a namespace another tool manages", (runner, "pods", "CREATE", obj, None, helm), "denied"),
        ("delete its own namespace", (runner, "namespaces", "DELETE", None, own, None), "denied"),
        ("create a pod in a build namespace", (runner, "pods", "CREATE", obj, None, build), "allowed"),
        ("create a job in a build namespace", (runner, "jobs", "CREATE", obj, None, build), "allowed"),
        ("create a pod in kube-system", (runner, "pods", "CREATE", obj, None, system), "denied"),
        ("create a secret in its own namespace", (runner, "secrets", "CREATE", obj, None, own), "denied"),
        ("delete a job in a build namespace", (runner, "jobs", "DELETE", None, obj, build), "allowed"),
        ("delete a configmap in an unlabelled namespace", (runner, "configmaps", "DELETE", None, obj, bare), "denied"),
        ("another user in kube-system", ("system:admin", "pods", "CREATE", obj, None, system), "not matched"),
        ("another service account", (f"system:serviceaccount:{namespace}:other", "namespaces", "CREATE", bare, None, None), "not matched"),
        ("create a build namespace without Pod Security", (runner, "namespaces", "CREATE", unenforced, None, None), "denied"),
        ("create a privileged build namespace", (runner, "namespaces", "CREATE", privileged, None, None), "denied"),
        ("create a restricted build namespace", (runner, "namespaces", "CREATE", restricted, None, None), "allowed"),
        ("exec into a pod of a build namespace", (runner, "pods", "CONNECT", exec_options, None, build, "exec"), "allowed"),
        ("exec into a pod in kube-system", (runner, "pods", "CONNECT", exec_options, None, system, "exec"), "denied"),
        ("attach to a pod in its own namespace", (runner, "pods", "CONNECT", {"kind": "PodAttachOptions"}, None, own, "attach"), "denied"),
        ("attach to a pod of a build namespace", (runner, "pods", "CONNECT", {"kind": "PodAttachOptions"}, None, build, "attach"), "allowed"),
        ("create a build lease in a build namespace", (runner, "leases", "CREATE", obj, None, build), "allowed"),
        ("renew a build lease in a build namespace", (runner, "leases", "UPDATE", obj, obj, build), "allowed"),
        ("take over a leader-election lease in kube-system", (runner, "leases", "UPDATE", obj, obj, system), "denied"),
    ]
    wrong = 0
    for what, args, expected in cases:
        verdict = admit(*args)
        ok = verdict.split(" (")[0] == expected
        wrong += not ok
        print(f"{'ok' if ok else 'WRONG'}: {what}: {verdict} (expected {expected})")
    return wrong


if __name__ == "__main__":
    sys.exit(main())
