#!/usr/bin/env python3
"""Validates Kubernetes manifests offline.

Built-in kinds are checked against the Kubernetes OpenAPI schemas bundled with the
kubernetes-validate package (strict: unknown fields are errors); custom resources
against the openAPIV3Schema of their CustomResourceDefinition (from --crds), also with
unknown fields rejected. Exit 0 when every document is valid, 1 listing every problem.

usage: validate.py --crds DIR FILE...
"""
import glob
import os
import sys

try:
    import jsonschema
    import kubernetes_validate
    import yaml
except ImportError as e:
    sys.exit(f"validate.py: {e}; install it with: pip install kubernetes-validate==1.31.0")

KUBERNETES_VERSION = "1.31.0"


def closed(schema):
    """Rejects properties a schema does not declare (the API server would prune them)."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        for v in schema.values():
            closed(v)
    elif isinstance(schema, list):
        for v in schema:
            closed(v)
    return schema


def load_crds(folder):
    schemas = {}
    for path in glob.glob(os.path.join(folder, "*.yaml")):
        with open(path) as f:
            for crd in yaml.safe_load_all(f):
                spec = crd["spec"]
                for version in spec["versions"]:
                    key = (f'{spec["group"]}/{version["name"]}', spec["names"]["kind"])
                    schema = closed(version["schema"]["openAPIV3Schema"])
                    # apiVersion, kind and metadata are the API server's.
                    schema.setdefault("properties", {}).update(
                        {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}})
                    schemas[key] = schema
    return schemas


def main(argv):
    if len(argv) < 3 or argv[0] != "--crds":
        sys.exit(__doc__)
    crds = load_crds(argv[1])
    if not crds:
        sys.exit(f"validate.py: no CRDs in {argv[1]}")
    problems, count = [], 0
    for path in argv[2:]:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        for doc in docs:
            count += 1
            where = f'{path}: {doc.get("kind")}/{doc.get("metadata", {}).get("name")}'
            key = (doc.get("apiVersion"), doc.get("kind"))
            try:
                if key in crds:
                    # CRDs carry Go regexes, which the metaschema check would reject
                    for e in jsonschema.Draft7Validator(crds[key]).iter_errors(doc):
                        problems.append(f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
                else:
                    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{where}: {'/'.join(map(str, e.path))}: {e.message}")
            except Exception as e:  # an unknown kind or version
                problems.append(f"{where}: {e}")
    for p in problems:
        print(p)
    print(f"{count} documents, {len(problems)} problems (Kubernetes {KUBERNETES_VERSION})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
