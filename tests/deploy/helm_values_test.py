"""Checks the helm chart's values and the per-environment values files against the chart and the
environment configs. (No helm client is packaged for Debian 12 or npm, so templates are not rendered.)"""
import json
import os
import sys
import unittest

try:
    import yaml
except ImportError:  # Debian's python3-yaml is for /usr/bin/python3
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
    raise

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHART = os.path.join(ROOT, "helm", "keymaster")


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


class HelmValues(unittest.TestCase):
    def test_chart_metadata(self):
        chart = load_yaml(os.path.join(CHART, "Chart.yaml"))
        self.assertEqual(chart["apiVersion"], "v2")
        self.assertEqual(chart["name"], "keymaster")

    def test_defaults_are_safe(self):
        v = load_yaml(os.path.join(CHART, "values.yaml"))
        self.assertTrue(v["podSecurityContext"]["runAsNonRoot"])
        self.assertTrue(v["securityContext"]["readOnlyRootFilesystem"])
        self.assertFalse(v["securityContext"]["allowPrivilegeEscalation"])
        self.assertEqual(v["securityContext"]["capabilities"]["drop"], ["ALL"])
        with open(os.path.join(CHART, "templates", "deployment.yaml")) as f:
            deployment = f.read()
        self.assertIn("replicas: 1", deployment)
        self.assertIn("type: Recreate", deployment)
        for probe in ("path: /healthz", "path: /readyz"):
            self.assertIn(probe, deployment)

    def test_environment_values_match_the_chart_and_configs(self):
        defaults = load_yaml(os.path.join(CHART, "values.yaml"))
        for env in ("development", "staging", "production"):
            values = load_yaml(os.path.join(ROOT, "etc", "environments", f"{env}.values.yaml"))
            with open(os.path.join(ROOT, "etc", "environments", f"{env}.json")) as f:
                networks = set(json.load(f)["networks"])
            unknown = set(values) - set(defaults)
            self.assertFalse(unknown, f"{env}: keys the chart does not know: {unknown}")
            seen = []
            for shard in values.get("shards", []):
                seen += shard["networks"]
            self.assertEqual(len(seen), len(set(seen)), f"{env}: a network in two shards")
            self.assertTrue(set(seen) <= networks, f"{env}: shard network not in the config")
            if seen:
                self.assertEqual(set(seen), networks, f"{env}: a network in no shard is never funded")


if __name__ == "__main__":
    unittest.main(verbosity=2)
