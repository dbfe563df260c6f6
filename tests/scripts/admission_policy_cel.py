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

    def admit(user, resource, operation, obj, old, namespace_object):
        request = {
            "userInfo": {"username": user},
            "resource": {"group": "", "resource": resource},
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
    build = {"metadata": {"name": "hr-1-a", "labels": {"app.kubernetes.io/managed-by": "hybrid-runner"}}}
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
