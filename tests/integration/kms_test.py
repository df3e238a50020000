"""KMS banks and `keymaster keys` against a local KMS stand-in and real anvil chains.

The stand-in (kms_standin.py) checks every request's SigV4 with botocore, not keymaster's code,
and signs with python3-cryptography, whose signatures have a high s about half the time.
Addresses are cross-checked with cast (keccak of the stand-in's public key).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from chains import CAST, ETHER, Chain, checksum, fresh_address, keymaster, write_config  # noqa: E402
from daemon_test import Daemon, wait_for  # noqa: E402

# Debian's python3 with python3-botocore and python3-cryptography (not a virtualenv's).
KMS_PYTHON = os.environ.get("KMS_PYTHON", "/usr/bin/python3")
STANDIN = os.path.join(os.path.dirname(__file__), "kms_standin.py")
AKID, SECRET = "AKIDKEYMASTERTEST", "kms-standin-secret-do-not-print"
DENIED_AKID, DENIED_SECRET = "AKIDDENIED", "denied-secret-value"
ROLE_ARN = "arn:aws:iam::111122223333:role/keymaster"
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.test-web-identity-token"
# No credential source of the machine running the tests may leak in.
CLEAN = {k: "" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                         "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                         "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_STS", "AWS_REGION",
                         "AWS_DEFAULT_REGION")}
CLEAN["AWS_EC2_METADATA_DISABLED"] = "true"


class StandIn:
    def __init__(self, *extra):
        self.proc = subprocess.Popen(
            [KMS_PYTHON, STANDIN, "--cred", f"{AKID}:{SECRET}", "--cred", f"{DENIED_AKID}:{DENIED_SECRET}:deny",
             "--web-identity", f"{ROLE_ARN}|{WEB_TOKEN}", "--imds-role", "keymaster-role", "--page-size", "4", *extra],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError("the KMS stand-in did not start (needs python3-botocore and python3-cryptography)")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def _req(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        with urllib.request.urlopen(urllib.request.Request(self.url + path, data), timeout=10) as r:
            return json.load(r)

    def stats(self):
        return self._req("/_stats")

    def keys(self):
        return self._req("/_keys")

    def control(self, **kw):
        return self._req("/_control", kw)

    def create_key(self, alias, spec="ECC_SECG_P256K1"):
        k = self.control(create_key={"alias": alias, "spec": spec})
        return k["KeyId"], address_of(k["PublicKey"])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def address_of(public_key_hex):
    """Ethereum address of an (x || y) public key, computed by cast."""
    h = subprocess.run([CAST, "keccak", "0x" + public_key_hex], check=True, capture_output=True, text=True).stdout.strip()
    return checksum("0x" + h[-40:])


class KmsBank(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kms = StandIn("--sign-delay", "0.02")  # each Sign takes 20 ms, like a KMS round trip
        cls.alpha, cls.beta = Chain(31337), Chain(1338)
        cls.key_id, cls.bank = cls.kms.create_key("alias/test-bank")
        for c in (cls.alpha, cls.beta):
            c.set_balance(cls.bank, 1000 * ETHER)
        cls.env = dict(CLEAN, AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_ENDPOINT_URL_KMS=cls.kms.url)

    @classmethod
    def tearDownClass(cls):
        for c in (cls.alpha, cls.beta):
            c.stop()
        cls.kms.stop()

    def config(self, bank, watchers=3, networks=("alpha", "beta")):
        chains = {"alpha": self.alpha, "beta": self.beta}
        agents = {n: {"updater": fresh_address(), "relayer": fresh_address(), "processor": fresh_address(),
                      "watchers": [fresh_address() for _ in range(watchers)]} for n in networks}
        cfg = {"networks": {n: {"endpoint": chains[n].url, "bank": bank, "threshold": "1 ether", "agents": agents[n]}
                            for n in networks}}
        return write_config(cfg), agents

    def bank_ref(self, **extra):
        return dict({"keyId": "alias/test-bank", "region": "us-east-1"}, **extra)

    def assert_no_secret(self, text):
        self.assertNotIn(SECRET, text)
        self.assertNotIn(WEB_TOKEN, text)

    def test_1_status_shows_the_kms_bank_address(self):
        path, _ = self.config(self.bank_ref())
        r = keymaster("status", "--config", path, "--json", env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        status = json.loads(r.stdout)
        banks = {n["name"]: n["bank"]["address"] for n in status["networks"]}
        self.assertEqual(banks, {"alpha": self.bank, "beta": self.bank})
        self.assert_no_secret(r.stdout + r.stderr)

    def test_2_top_up_from_a_kms_bank_on_two_chains(self):
        # Funded on their home chain: the updater and 12 watchers (relayer and processor are funded
        # on replicas; there are none here). 26 signatures: high-s ones (about half) surely occur.
        path, agents = self.config(self.bank_ref(), watchers=12)
        before = self.kms.stats()
        r = keymaster("top-up", "--config", path, "--yes", env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_no_secret(r.stdout + r.stderr)
        for name, chain in (("alpha", self.alpha), ("beta", self.beta)):
            a = agents[name]
            for addr in [a["updater"], *a["watchers"]]:
                self.assertEqual(chain.balance(addr), 2 * ETHER, f"{name} {addr}")
            # anvil recovers each sender from the signature: every transfer came from the KMS key.
            senders = {tx["from"].lower() for tx in chain.transactions_from(self.bank)}
            self.assertEqual(senders, {self.bank.lower()})
        after = self.kms.stats()
        signed = after["kms"]["Sign"] - before["kms"].get("Sign", 0)
        self.assertEqual(signed, 26)
        self.assertGreater(after["high_s"] - before["high_s"], 0, "the stand-in never returned a high s")
        self.assertGreater(after["low_s"] - before["low_s"], 0)
        # Signed several at a time, not one round trip after another.
        self.assertGreaterEqual(after["sign_inflight_max"], 2)

    def test_3_wrong_credentials_clear_error_nothing_sent(self):
        path, agents = self.config(self.bank_ref(), networks=("alpha",))
        nonce = self.alpha.nonce(self.bank)
        for akid, secret, code in ((AKID, "wrong-secret-value", "InvalidSignatureException"),
                                   ("AKIDUNKNOWN", SECRET, "UnrecognizedClientException"),
                                   (DENIED_AKID, DENIED_SECRET, "AccessDeniedException")):
            env = dict(self.env, AWS_ACCESS_KEY_ID=akid, AWS_SECRET_ACCESS_KEY=secret)
            r = keymaster("top-up", "--config", path, "--yes", env=env)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("networks.alpha.bank: KMS GetPublicKey for key alias/test-bank (us-east-1): " + code, r.stderr)
            self.assertNotIn(secret, r.stdout + r.stderr)
            self.assert_no_secret(r.stdout + r.stderr)
        self.assertEqual(self.alpha.nonce(self.bank), nonce)
        self.assertEqual(self.alpha.balance(agents["alpha"]["updater"]), 0)

    def test_4_sign_refused_nothing_sent(self):
        path, agents = self.config(self.bank_ref(), networks=("alpha",))
        accounts = [agents["alpha"]["updater"], *agents["alpha"]["watchers"]]
        nonce = self.alpha.nonce(self.bank)
        # Every Sign refused: nothing at all is sent.
        self.kms.control(deny_sign=1000)
        try:
            r = keymaster("top-up", "--config", path, "--yes", env=self.env)
        finally:
            self.kms.control(deny_sign=0)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("KMS Sign for key alias/test-bank (us-east-1): AccessDeniedException", r.stdout + r.stderr)
        self.assertEqual(self.alpha.nonce(self.bank), nonce)
        self.assertEqual(int(self.alpha_pending_nonce()), nonce)
        for addr in accounts:
            self.assertEqual(self.alpha.balance(addr), 0)
        # One Sign refused (whichever arrives first: signing runs several at a time): the top-ups
        # before it in nonce order are sent, none after it, so no nonce gap is left.
        self.kms.control(deny_sign=1)
        r = keymaster("top-up", "--config", path, "--yes", env=self.env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        sent = self.alpha.nonce(self.bank) - nonce
        self.assertEqual(int(self.alpha_pending_nonce()), nonce + sent)  # nothing queued behind a gap
        self.assertLess(sent, len(accounts))
        self.assertEqual(sum(1 for a in accounts if self.alpha.balance(a) == 2 * ETHER), sent)
        # The next run pays the rest, once each.
        r = keymaster("top-up", "--config", path, "--yes", env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for addr in accounts:
            self.assertEqual(self.alpha.balance(addr), 2 * ETHER)
        self.assertEqual(self.alpha.nonce(self.bank), nonce + len(accounts))

    def alpha_pending_nonce(self):
        from chains import rpc
        return int(rpc(self.alpha.url, "eth_getTransactionCount", [self.bank, "pending"]), 16)

    def test_5_throttling_is_retried(self):
        path, agents = self.config(self.bank_ref(), networks=("alpha",), watchers=0)
        before = self.kms.stats()["rejected"].get("ThrottlingException", 0)
        self.kms.control(throttle=2)
        r = keymaster("top-up", "--config", path, "--yes", env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.kms.stats()["rejected"]["ThrottlingException"] - before, 2)
        self.assertIn("ThrottlingException", r.stderr)  # the retry is logged
        self.assertEqual(self.alpha.balance(agents["alpha"]["updater"]), 2 * ETHER)

    def test_6_credentials_from_the_config(self):
        ref = self.bank_ref(accessKeyId=AKID, secretAccessKey=SECRET, endpoint=self.kms.url)
        path, _ = self.config(ref, networks=("alpha",))
        r = keymaster("status", "--config", path, env=CLEAN)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.bank, r.stdout)
        self.assertIn("secretAccessKey", r.stderr)  # warned: a secret in the config file
        self.assert_no_secret(r.stdout + r.stderr)

    def test_7_web_identity_through_sts_refreshed_before_expiry(self):
        # Credentials valid for 302 s are refreshed 5 minutes early: 2 s after each STS call.
        kms = StandIn("--temp-duration", "302")
        try:
            key, bank = kms.create_key("alias/test-bank")
            self.alpha.set_balance(bank, 100 * ETHER)
            token = tempfile.NamedTemporaryFile("w", delete=False)
            token.write(WEB_TOKEN + "\n")
            token.close()
            path, agents = self.config(self.bank_ref(), networks=("alpha",), watchers=0)
            env = dict(CLEAN, AWS_WEB_IDENTITY_TOKEN_FILE=token.name, AWS_ROLE_ARN=ROLE_ARN, AWS_ENDPOINT_URL=kms.url)
            d = Daemon(path, env)
            try:
                wait_for("first funding", lambda: self.alpha.balance(agents["alpha"]["updater"]) == 2 * ETHER)
                first = kms.stats()["sts"]
                self.assertGreaterEqual(first, 1)
                time.sleep(2.5)
                self.alpha.set_balance(agents["alpha"]["updater"], 0)
                wait_for("refund", lambda: self.alpha.balance(agents["alpha"]["updater"]) == 2 * ETHER)
                self.assertGreater(kms.stats()["sts"], first, "credentials were not refreshed")
                self.assertIn("web identity", d.output())
                self.assert_no_secret(d.output())
            finally:
                d.stop()
            # A wrong token: STS refuses, the error says so.
            with open(token.name, "w") as f:
                f.write("not-the-token")
            r = keymaster("status", "--config", path, env=env)
            self.assertEqual(r.returncode, 2)
            self.assertIn("STS AssumeRoleWithWebIdentity: AccessDenied", r.stderr)
        finally:
            kms.stop()

    def test_8_instance_metadata_imdsv2(self):
        env = dict(CLEAN, AWS_EC2_METADATA_DISABLED="", AWS_EC2_METADATA_SERVICE_ENDPOINT=self.kms.url,
                   AWS_ENDPOINT_URL_KMS=self.kms.url)
        before = self.kms.stats()
        path, _ = self.config(self.bank_ref(), networks=("alpha",))
        r = keymaster("status", "--config", path, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.bank, r.stdout)
        after = self.kms.stats()
        self.assertEqual(after["imds_token"] - before["imds_token"], 1)
        self.assertEqual(after["imds_creds"] - before["imds_creds"], 1)
        self.assertIn("instance metadata (keymaster-role)", r.stderr)

    def test_9_no_credentials_anywhere(self):
        path, _ = self.config(self.bank_ref(), networks=("alpha",))
        r = keymaster("status", "--config", path, env=dict(CLEAN, AWS_ENDPOINT_URL_KMS=self.kms.url))
        self.assertEqual(r.returncode, 2)
        self.assertIn("no AWS credentials", r.stderr)

    def test_10_unsuitable_or_missing_keys(self):
        self.kms.create_key("alias/test-p256", spec="ECC_NIST_P256")
        path, _ = self.config(self.bank_ref(keyId="alias/test-p256"), networks=("alpha",))
        r = keymaster("status", "--config", path, env=self.env)
        self.assertEqual(r.returncode, 2)
        self.assertIn("KMS key alias/test-p256 (us-east-1): key spec is ECC_NIST_P256, Ethereum needs ECC_SECG_P256K1",
                      r.stderr)
        path, _ = self.config(self.bank_ref(keyId="alias/nope"), networks=("alpha",))
        r = keymaster("status", "--config", path, env=self.env)
        self.assertEqual(r.returncode, 2)
        self.assertIn("KMS GetPublicKey for key alias/nope (us-east-1): NotFoundException", r.stderr)


class Keys(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kms = StandIn()
        cls.env = dict(CLEAN, AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_ENDPOINT_URL_KMS=cls.kms.url)
        cls.dir = tempfile.mkdtemp(prefix="keymaster-keys-")

    @classmethod
    def tearDownClass(cls):
        cls.kms.stop()

    def run_keys(self, *args, env=None):
        return keymaster("keys", *args, "--config", os.path.join(self.dir, "none.json"), env=env or self.env)

    def test_1_provision_needs_confirmation(self):
        r = self.run_keys("provision", "--environment", "staging", "--region", "us-east-1", "--networks", "alpha,beta")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("pass --yes", r.stderr)
        self.assertEqual(self.kms.stats()["kms"].get("CreateKey", 0), 0)

    def test_2_provision_twice_creates_each_key_once_and_list_matches(self):
        args = ("--environment", "staging", "--region", "us-east-1", "--networks", "alpha,beta")
        r = self.run_keys("provision", *args, "--yes")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # staging: 2 attestation keys per environment, 5 signer keys per network.
        self.assertEqual(self.kms.stats()["kms"]["CreateKey"], 12)
        self.assertEqual(self.kms.stats()["kms"]["CreateAlias"], 12)
        r2 = self.run_keys("provision", *args, "--yes")
        self.assertEqual(r2.returncode, 0, r2.stdout + r2.stderr)
        self.assertIn("12 of 12 keys of staging exist in us-east-1; 0 to create", r2.stdout)
        self.assertEqual(self.kms.stats()["kms"]["CreateKey"], 12)

        # The stand-in's own view: alias -> (ARN, address from its public key, via cast).
        truth = {}
        for kid, k in self.kms.keys().items():
            for alias in k["Aliases"]:
                truth[alias] = (k["Arn"], address_of(k["PublicKey"]))
        expected_aliases = {"alias/staging-watcher-attestation", "alias/staging-updater-attestation"} | {
            f"alias/staging-{n}-{r}-signer" for n in ("alpha", "beta")
            for r in ("watcher", "updater", "processor", "relayer", "kathy")}
        self.assertEqual(set(truth), expected_aliases)

        r = self.run_keys("list", "--environment", "staging", "--region", "us-east-1", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = json.loads(r.stdout)
        self.assertEqual({x["alias"]: (x["arn"], x["address"]) for x in rows}, truth)
        self.assertTrue(all(x["region"] == "us-east-1" for x in rows))
        # The table form: one row per key, in provision's output too.
        r = self.run_keys("list", "--environment", "staging", "--region", "us-east-1")
        lines = r.stdout.strip().splitlines()
        self.assertEqual(lines[0].split(), ["ALIAS", "KEY", "ARN", "ADDRESS", "REGION"])
        self.assertEqual(len(lines), 13)
        for alias, (arn, address) in truth.items():
            self.assertIn(alias, r2.stdout)
            self.assertTrue(any(alias in l and arn in l and address in l for l in lines), alias)

        # --networks limits the list (per-environment keys still show).
        r = self.run_keys("list", "--environment", "staging", "--region", "us-east-1", "--networks", "beta", "--json")
        self.assertEqual({x["alias"] for x in json.loads(r.stdout)},
                         {a for a in expected_aliases if "-alpha-" not in a})
        # Another environment's keys are not listed.
        r = self.run_keys("list", "--environment", "production", "--region", "us-east-1", "--json")
        self.assertEqual(json.loads(r.stdout), [])

    def test_3_emit_config_gives_agents_blocks_keymaster_accepts(self):
        r = self.run_keys("provision", "--environment", "staging", "--region", "us-east-1", "--networks", "alpha,beta",
                          "--yes", "--emit-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        blocks = json.loads(r.stdout)  # stdout is only the JSON
        truth = {}
        for kid, k in self.kms.keys().items():
            for alias in k["Aliases"]:
                truth[alias] = address_of(k["PublicKey"])
        self.assertEqual(blocks["alpha"]["agents"], {
            "updater": truth["alias/staging-alpha-updater-signer"],
            "watchers": [truth["alias/staging-alpha-watcher-signer"]],
            "relayer": truth["alias/staging-alpha-relayer-signer"],
            "processor": truth["alias/staging-alpha-processor-signer"],
            "kathy": truth["alias/staging-alpha-kathy-signer"]})
        cfg = {"networks": {n: dict(blocks[n], endpoint="http://127.0.0.1:1", bank={"keyEnv": "KM_BANK"},
                                    threshold="1 ether") for n in ("alpha", "beta")}}
        r = keymaster("validate", "--config", write_config(cfg),
                      env={"KM_BANK": "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_4_key_sets_file_and_config_networks(self):
        sets = os.path.join(self.dir, "sets.json")
        with open(sets, "w") as f:
            json.dump({"agentKeys": {"lab": ["relayer-signer", "updater-attestation"]}}, f)
        cfg = {"networks": {"gamma": {"endpoint": "http://127.0.0.1:1", "bank": {"keyEnv": "KM_BANK"},
                                      "threshold": "1 ether",
                                      "agents": {"updater": fresh_address(), "relayer": fresh_address(),
                                                 "processor": fresh_address(), "watchers": []}}}}
        path = write_config(cfg)
        r = keymaster("keys", "provision", "--environment", "lab", "--region", "us-east-1", "--key-sets", sets,
                      "--config", path, "--yes", env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("alias/lab-gamma-relayer-signer", r.stdout)
        self.assertIn("alias/lab-updater-attestation", r.stdout)
        self.assertIn("0 of 2 keys of lab exist", r.stdout)
        r = self.run_keys("provision", "--environment", "qa", "--region", "us-east-1", "--networks", "x", "--yes")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--environment qa: no key set for it (known: production, staging)", r.stderr)

    def test_5_wrong_credentials(self):
        r = self.run_keys("list", "--environment", "staging", "--region", "us-east-1",
                          env=dict(self.env, AWS_SECRET_ACCESS_KEY="bad-secret-xyz"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("KMS ListAliases for aliases (us-east-1): InvalidSignatureException", r.stderr)
        self.assertNotIn("bad-secret-xyz", r.stdout + r.stderr)

    def test_6_policy(self):
        r = self.run_keys("policy", "--environment", "production", "--role", "updater", "--account-id", "111122223333")
        self.assertEqual(r.returncode, 0, r.stderr)
        p = json.loads(r.stdout)
        st = p["Statement"][0]
        self.assertEqual(st["Action"], ["kms:GetPublicKey", "kms:Sign"])
        self.assertEqual(st["Resource"], "arn:aws:kms:*:111122223333:key/*")
        self.assertEqual(st["Condition"]["ForAnyValue:StringLike"]["kms:ResourceAliases"],
                         ["alias/production-*-updater-signer", "alias/production-updater-attestation"])
        r = self.run_keys("policy", "--environment", "production", "--role", "kathy")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no keys for role 'kathy'", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
