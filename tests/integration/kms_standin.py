#!/usr/bin/python3
"""A local stand-in for AWS KMS (plus STS web identity and EC2 instance metadata) for tests.

Every KMS request's Signature Version 4 is checked with botocore's SigV4Auth (Debian's
python3-botocore), an implementation independent of keymaster's. Keys are secp256k1 keys made by
python3-cryptography, whose ECDSA signatures are not normalised: about half have a high s, as
with real KMS.

    /usr/bin/python3 kms_standin.py --cred AKID:SECRET [--cred AKID2:SECRET2:deny] \
        [--web-identity ROLE_ARN:TOKEN] [--imds-role NAME] [--temp-duration SECONDS]

Prints "PORT <n>" once listening on 127.0.0.1. Test hooks (unsigned, loopback only):
    GET  /_stats                       counters
    GET  /_keys                        every key: ARN, public key (x || y hex), aliases
    POST /_control {"deny_sign": N}     the next N Sign calls answer AccessDeniedException
    POST /_control {"throttle": N}      the next N KMS calls answer ThrottlingException
    POST /_control {"create_key": {"alias": "alias/x", "spec": "ECC_SECG_P256K1"}}  -> key id, address
"""
import argparse
import base64
import datetime
import json
import re
import secrets
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

ACCOUNT = "111122223333"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

lock = threading.Lock()
stats = {"kms": {}, "sign_inflight": 0, "sign_inflight_max": 0, "sts": 0, "imds_token": 0, "imds_creds": 0, "high_s": 0, "low_s": 0, "rejected": {}}
keys = {}      # key id -> {"priv", "spec", "usage", "arn", "state"}
aliases = {}   # alias name -> key id
creds = {}     # access key id -> {"secret", "token", "deny", "expires"}
imds_tokens = set()
control = {"throttle": 0, "deny_sign": 0}
args = None


class KmsError(Exception):
    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def public_key_hex(priv):
    """The 64-byte public point (x || y) in hex; tests derive the address from it with cast."""
    raw = priv.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return raw[1:].hex()


def new_key(spec="ECC_SECG_P256K1", usage="SIGN_VERIFY"):
    curve = {"ECC_SECG_P256K1": ec.SECP256K1(), "ECC_NIST_P256": ec.SECP256R1()}.get(spec)
    if curve is None:
        raise KmsError("UnsupportedOperationException", f"KeySpec {spec} is not supported by the stand-in")
    kid = str(uuid.uuid4())
    keys[kid] = {"priv": ec.generate_private_key(curve), "spec": spec, "usage": usage,
                 "arn": f"arn:aws:kms:{args.region}:{ACCOUNT}:key/{kid}", "state": "Enabled"}
    return kid


def resolve(key_id):
    if not isinstance(key_id, str) or not key_id:
        raise KmsError("ValidationException", "KeyId is required")
    name = key_id
    m = re.match(r"arn:aws:kms:[^:]+:\d+:(alias/.+)$", key_id)
    if m:
        name = m.group(1)
    if name.startswith("alias/"):
        if name not in aliases:
            raise KmsError("NotFoundException", f"Alias arn:aws:kms:{args.region}:{ACCOUNT}:{name} is not found.")
        return aliases[name]
    m = re.match(r"arn:aws:kms:[^:]+:\d+:key/(.+)$", key_id)
    kid = m.group(1) if m else key_id
    if kid not in keys:
        raise KmsError("NotFoundException", f"Key 'arn:aws:kms:{args.region}:{ACCOUNT}:key/{kid}' does not exist")
    return kid


def metadata(kid):
    k = keys[kid]
    return {"AWSAccountId": ACCOUNT, "KeyId": kid, "Arn": k["arn"], "KeySpec": k["spec"],
            "CustomerMasterKeySpec": k["spec"], "KeyUsage": k["usage"], "KeyState": k["state"],
            "Enabled": k["state"] == "Enabled", "SigningAlgorithms": ["ECDSA_SHA_256"], "KeyManager": "CUSTOMER"}


def kms_action(action, body):
    if action == "CreateKey":
        kid = new_key(body.get("KeySpec", "SYMMETRIC_DEFAULT"), body.get("KeyUsage", "ENCRYPT_DECRYPT"))
        return {"KeyMetadata": metadata(kid)}
    if action == "CreateAlias":
        name, target = body.get("AliasName", ""), body.get("TargetKeyId", "")
        if not name.startswith("alias/") or name.startswith("alias/aws/"):
            raise KmsError("ValidationException", f"Alias must start with alias/: {name}")
        if name in aliases:
            raise KmsError("AlreadyExistsException", f"An alias with the name arn:aws:kms:{args.region}:{ACCOUNT}:{name} already exists")
        aliases[name] = resolve(target)
        return {}
    if action == "ListAliases":
        names = sorted(aliases)
        start = int(body.get("Marker", "0") or 0)
        limit = min(int(body.get("Limit", 50)), args.page_size)
        page = names[start:start + limit]
        out = {"Aliases": [{"AliasName": n, "AliasArn": f"arn:aws:kms:{args.region}:{ACCOUNT}:{n}",
                            "TargetKeyId": aliases[n]} for n in page], "Truncated": start + limit < len(names)}
        if out["Truncated"]:
            out["NextMarker"] = str(start + limit)
        return out
    if action == "DescribeKey":
        return {"KeyMetadata": metadata(resolve(body.get("KeyId")))}
    if action == "GetPublicKey":
        kid = resolve(body.get("KeyId"))
        k = keys[kid]
        der = k["priv"].public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        return {"KeyId": k["arn"], "PublicKey": base64.b64encode(der).decode(), "KeySpec": k["spec"],
                "CustomerMasterKeySpec": k["spec"], "KeyUsage": k["usage"], "SigningAlgorithms": ["ECDSA_SHA_256"]}
    if action == "Sign":
        kid = resolve(body.get("KeyId"))
        k = keys[kid]
        if body.get("SigningAlgorithm") != "ECDSA_SHA_256" or body.get("MessageType") != "DIGEST":
            raise KmsError("ValidationException", "expected ECDSA_SHA_256 over a DIGEST")
        digest = base64.b64decode(body.get("Message", ""))
        if len(digest) != 32:
            raise KmsError("ValidationException", "a DIGEST must be 32 bytes")
        der = k["priv"].sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        _, s = utils.decode_dss_signature(der)
        stats["high_s" if s > SECP256K1_N // 2 else "low_s"] += 1
        return {"KeyId": k["arn"], "Signature": base64.b64encode(der).decode(), "SigningAlgorithm": "ECDSA_SHA_256"}
    raise KmsError("UnknownOperationException", f"{action} is not implemented by the stand-in")


def check_sigv4(handler, body):
    """Checks the request's SigV4 with botocore; returns the caller's credentials record."""
    auth = handler.headers.get("Authorization", "")
    m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                 r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$", auth)
    if not m:
        raise KmsError("IncompleteSignatureException", "Authorization header is malformed or missing")
    akid, date, region, service, signed, signature = m.groups()
    signed_list = signed.split(";")
    if service != "kms" or region != args.region:
        raise KmsError("InvalidSignatureException", f"Credential should be scoped to a valid region/service, not {region}/{service}")
    for name in handler.headers.keys():
        lname = name.lower()
        if (lname.startswith("x-amz-") or lname in ("host", "content-type")) and lname not in signed_list:
            raise KmsError("InvalidSignatureException", f"header {lname} is sent but not signed")
    amz_date = handler.headers.get("X-Amz-Date", "")
    if not amz_date.startswith(date):
        raise KmsError("InvalidSignatureException", "X-Amz-Date does not match the credential scope")
    when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    if abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) > 300:
        raise KmsError("InvalidSignatureException", "Signature expired")
    with lock:
        rec = creds.get(akid)
    if rec is None:
        raise KmsError("UnrecognizedClientException", "The security token included in the request is invalid.")
    if rec.get("expires") and datetime.datetime.now(datetime.timezone.utc) > rec["expires"]:
        raise KmsError("ExpiredTokenException", "The security token included in the request is expired")
    if rec.get("token") and handler.headers.get("X-Amz-Security-Token") != rec["token"]:
        raise KmsError("UnrecognizedClientException", "The security token included in the request is invalid.")
    headers = {}
    for name in signed_list:
        values = handler.headers.get_all(name) or []
        if not values:
            raise KmsError("InvalidSignatureException", f"signed header {name} is missing")
        headers[name] = ",".join(values)
    request = AWSRequest(method=handler.command, url=f"http://{headers.get('host', 'localhost')}{handler.path}",
                         data=body, headers=headers)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(akid, rec["secret"], rec.get("token")), "kms", region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != signature:
        raise KmsError("InvalidSignatureException",
                       "The request signature we calculated does not match the signature you provided. "
                       "Check your AWS Secret Access Key and signing method.")
    return rec


def temp_credentials():
    akid = "ASIA" + secrets.token_hex(8).upper()
    rec = {"secret": secrets.token_urlsafe(30), "token": secrets.token_urlsafe(60), "deny": False,
           "expires": datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=args.temp_duration)}
    with lock:
        creds[akid] = rec
    return akid, rec


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        if args.verbose:
            sys.stderr.write("standin: " + fmt % a + "\n")

    def reply(self, status, body, ctype="application/x-amz-json-1.1"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.body()
        if self.path == "/_stats":
            with lock:
                return self.reply(200, json.dumps(stats), "application/json")
        if self.path == "/_keys":
            with lock:
                out = {kid: {"Arn": k["arn"], "PublicKey": public_key_hex(k["priv"]), "Spec": k["spec"],
                             "Aliases": sorted(a for a, t in aliases.items() if t == kid)} for kid, k in keys.items()}
            return self.reply(200, json.dumps(out), "application/json")
        if self.path.startswith("/latest/meta-data/iam/security-credentials/"):
            if self.headers.get("X-aws-ec2-metadata-token") not in imds_tokens:
                return self.reply(401, "", "text/plain")
            role = self.path[len("/latest/meta-data/iam/security-credentials/"):]
            if not args.imds_role:
                return self.reply(404, "", "text/plain")
            if role == "":
                return self.reply(200, args.imds_role, "text/plain")
            if role != args.imds_role:
                return self.reply(404, "", "text/plain")
            akid, rec = temp_credentials()
            with lock:
                stats["imds_creds"] += 1
            return self.reply(200, json.dumps({
                "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": akid, "SecretAccessKey": rec["secret"],
                "Token": rec["token"], "Expiration": rec["expires"].strftime("%Y-%m-%dT%H:%M:%SZ")}), "text/plain")
        self.reply(404, "", "text/plain")

    def do_PUT(self):
        self.body()
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            token = secrets.token_urlsafe(20)
            with lock:
                imds_tokens.add(token)
                stats["imds_token"] += 1
            return self.reply(200, token, "text/plain")
        self.reply(400 if self.path == "/latest/api/token" else 404, "", "text/plain")

    def do_POST(self):
        raw = self.body()
        if self.path == "/_control":
            req = json.loads(raw or b"{}")
            out = {}
            with lock:
                for k in ("throttle", "deny_sign"):
                    if k in req:
                        control[k] = int(req[k])
                if "create_key" in req:
                    spec = req["create_key"].get("spec", "ECC_SECG_P256K1")
                    kid = new_key(spec)
                    if req["create_key"].get("alias"):
                        aliases[req["create_key"]["alias"]] = kid
                    out = {"KeyId": kid, "Arn": keys[kid]["arn"], "PublicKey": public_key_hex(keys[kid]["priv"])}
            return self.reply(200, json.dumps(out), "application/json")
        target = self.headers.get("X-Amz-Target", "")
        if not target:
            return self.sts(raw)
        action = target.split(".", 1)[1] if target.startswith("TrentService.") else ""
        try:
            if not action:
                raise KmsError("UnknownOperationException", f"unknown target {target}")
            if self.headers.get("Content-Type") != "application/x-amz-json-1.1":
                raise KmsError("SerializationException", "Content-Type must be application/x-amz-json-1.1")
            rec = check_sigv4(self, raw)
            with lock:
                if control["throttle"] > 0:
                    control["throttle"] -= 1
                    raise KmsError("ThrottlingException", "Rate exceeded")
                if action == "Sign" and control["deny_sign"] > 0:
                    control["deny_sign"] -= 1
                    rec = dict(rec, deny=True)
                if rec.get("deny"):
                    raise KmsError("AccessDeniedException",
                                   f"User: arn:aws:iam::{ACCOUNT}:user/denied is not authorized to perform: kms:{action} "
                                   "because no identity-based policy allows the action")
                if action == "Sign":
                    stats["sign_inflight"] += 1
                    stats["sign_inflight_max"] = max(stats["sign_inflight_max"], stats["sign_inflight"])
            try:
                if action == "Sign" and args.sign_delay:
                    time.sleep(args.sign_delay)  # like a real KMS round trip; outside the lock
                with lock:
                    out = kms_action(action, json.loads(raw or b"{}"))
                    stats["kms"][action] = stats["kms"].get(action, 0) + 1
            finally:
                if action == "Sign":
                    with lock:
                        stats["sign_inflight"] -= 1
            self.reply(200, json.dumps(out))
        except KmsError as e:
            with lock:
                stats["rejected"][e.code] = stats["rejected"].get(e.code, 0) + 1
            self.reply(e.status, json.dumps({"__type": e.code, "message": e.message}))

    def sts(self, raw):
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("Action") != "AssumeRoleWithWebIdentity" or not args.web_identity:
            return self.reply(400, "<ErrorResponse><Error><Code>InvalidAction</Code><Message>unsupported</Message>"
                                   "</Error></ErrorResponse>", "text/xml")
        role, token = args.web_identity.rsplit("|", 1)
        if form.get("RoleArn") != role or form.get("WebIdentityToken") != token or not form.get("RoleSessionName"):
            return self.reply(400, "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not "
                                   "authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>",
                              "text/xml")
        akid, rec = temp_credentials()
        with lock:
            stats["sts"] += 1
        self.reply(200, f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>{akid}</AccessKeyId>
      <SecretAccessKey>{rec["secret"]}</SecretAccessKey>
      <SessionToken>{rec["token"]}</SessionToken>
      <Expiration>{rec["expires"].strftime("%Y-%m-%dT%H:%M:%SZ")}</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>""", "text/xml")


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--cred", action="append", default=[], help="AKID:SECRET[:deny]")
    p.add_argument("--web-identity", default="", help="ROLE_ARN|TOKEN")
    p.add_argument("--imds-role", default="")
    p.add_argument("--temp-duration", type=int, default=3600)
    p.add_argument("--page-size", type=int, default=50)
    p.add_argument("--sign-delay", type=float, default=0.0, help="seconds each Sign takes")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    for c in args.cred:
        parts = c.split(":")
        creds[parts[0]] = {"secret": parts[1], "deny": len(parts) > 2 and parts[2] == "deny"}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
