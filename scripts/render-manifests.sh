#!/usr/bin/env bash
# Renders deploy/kubernetes/countersign.yaml (plain manifests for the standalone
# case) from the Helm chart and deploy/kubernetes/values.yaml. Needs helm.
set -euo pipefail
cd "$(dirname "$0")/.."
{
    echo "# Rendered by scripts/render-manifests.sh from helm/countersign and"
    echo "# deploy/kubernetes/values.yaml: edit those, then render again."
    helm template countersign helm/countersign --namespace countersign \
        -f deploy/kubernetes/values.yaml
} > deploy/kubernetes/countersign.yaml
echo "wrote deploy/kubernetes/countersign.yaml"
