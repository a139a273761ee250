// Seal an EncryptedCredential in the browser: the JWE profile of
// vault/format/encrypted_credential.py (README "The EncryptedCredential format"),
// built only on WebCrypto so the secret is encrypted before it leaves the page.
//
// The gateway's public key is taken from the certificate whose SHA-256 is the
// kid, never from a separate field: the bytes we hash are the bytes we trust.
// Throws an Error (and returns nothing) whenever the gateway facts disagree.

const ALG_ECDH = "ECDH-ES+A256KW";
const ALG_RSA = "RSA-OAEP-256";
const KEY_TYPE_OF_ALG = { [ALG_ECDH]: "ec-p256", [ALG_RSA]: "rsa-3072" };
const MIN_RSA_BITS = 3072; // agent_keys.gateway_identity refuses smaller keys
const AUTH_TYPES = ["basic", "key", "anonymous"];
const DATA_SOURCE_TYPES = ["postgresql", "mysql", "sqlserver", "sqlite", "http"];
const TLS_MODES = ["verify-full", "verify-ca", "require", "disable"];
const PROFILE_VERSION = 2;
const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

// Unpadded base64url (RFC 7515 section 2). btoa wants a "binary string".
function b64url(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) out.set(part, (offset += part.length) - part.length);
  return out;
}

function u32be(value) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

// The DER inside exactly one PEM "CERTIFICATE" block (RFC 7468 section 5).
function certificateDer(pem) {
  const blocks = String(pem).match(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/g);
  if (!blocks || blocks.length !== 1) throw new Error("the gateway certificate is not one PEM certificate");
  const body = blocks[0].replace(/-----[A-Z ]+-----|\s/g, "");
  return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
}

// The DER of every PEM "CERTIFICATE" block in a CA file, in order.
function caCertificatesDer(pem) {
  const blocks = String(pem).match(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/g);
  if (!blocks) throw new Error("the CA file holds no PEM certificate");
  return blocks.map((block) => Uint8Array.from(atob(block.replace(/-----[A-Z ]+-----|\s/g, "")), (c) => c.charCodeAt(0)));
}

// The header's `tgt`: where the secret may be sent (README, "The
// EncryptedCredential format"). `ca` is base64url SHA-256 over the CA
// certificates' DER, concatenated in order, or null.
async function sealedTarget(target) {
  const { type, server, database = null, tls = "verify-full", ca_pem: caPem = null } = target ?? {};
  const text = (v) => typeof v === "string" && v.length > 0;
  if (!DATA_SOURCE_TYPES.includes(type) || !text(server) || !(database === null || text(database))) {
    throw new Error("the credential needs a data-source type and a server");
  }
  if (!TLS_MODES.includes(tls)) throw new Error(`tls must be one of ${TLS_MODES.join(", ")}`);
  const ca = caPem === null ? null : b64url(await subtle.digest("SHA-256", concatBytes(...caCertificatesDer(caPem))));
  return { type, server, database, tls, ca };
}

export async function certificateThumbprint(pem) {
  // kid is the x5t#S256 form: SHA-256 over the certificate DER (RFC 7515 section 4.1.8).
  return b64url(await subtle.digest("SHA-256", certificateDer(pem)));
}

// One DER TLV at `offset` (X.690 section 8.1): tag, content [start, end), next TLV.
function readTlv(der, offset) {
  if (!(offset + 2 <= der.length)) throw new Error("the gateway certificate is truncated");
  let length = der[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count < 1 || count > 3) throw new Error("the gateway certificate is not DER");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[start + i];
    start += count;
  }
  if (start + length > der.length) throw new Error("the gateway certificate is truncated");
  return { tag: der[offset], offset, start, end: start + length };
}

// TBSCertificate fields after the optional [0] version (RFC 5280 section 4.1):
// serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
function tbsFields(der) {
  const tbs = readTlv(der, readTlv(der, 0).start);
  const fields = [];
  for (let at = tbs.start; at < tbs.end; at = fields[fields.length - 1].end) fields.push(readTlv(der, at));
  const rest = fields[0]?.tag === 0xa0 ? fields.slice(1) : fields;
  if (rest.length < 6 || rest[3].tag !== 0x30 || rest[5].tag !== 0x30) {
    throw new Error("the gateway certificate is not an X.509 certificate");
  }
  return { validity: rest[3], spki: rest[5] };
}

// UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime, in seconds
// (RFC 5280 section 4.1.2.5: certificates always use these Z forms).
function derSeconds(der, tlv) {
  let text = String.fromCharCode(...der.subarray(tlv.start, tlv.end));
  if (tlv.tag === 0x17) text = (Number(text.slice(0, 2)) < 50 ? "20" : "19") + text;
  const m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text);
  if (!m) throw new Error("the gateway certificate has an unreadable validity");
  return Date.UTC(m[1], m[2] - 1, m[3], m[4], m[5], m[6]) / 1000;
}

// The same rule as seal_credential: no sealing to a certificate that is not valid now.
function checkValidity(der, validity, issuedAt) {
  const notBefore = readTlv(der, validity.start);
  const notAfter = readTlv(der, notBefore.end);
  if (!(derSeconds(der, notBefore) <= issuedAt && issuedAt <= derSeconds(der, notAfter))) {
    throw new Error("the gateway certificate is not valid now; get the current one");
  }
}

// Import the certificate's own SubjectPublicKeyInfo for `alg`, and refuse a
// served JWK that names another key: a sealer using it would seal elsewhere.
async function gatewayPublicKey(der, spki, alg, jwk) {
  const params = alg === ALG_ECDH
    ? [{ name: "ECDH", namedCurve: "P-256" }, []] // ECDH public keys take no usages
    : [{ name: "RSA-OAEP", hash: "SHA-256" }, ["wrapKey"]]; // RFC 7518 section 4.3
  let key;
  try {
    key = await subtle.importKey("spki", der.subarray(spki.offset, spki.end), params[0], true, params[1]);
  } catch {
    throw new Error(`the gateway certificate's key does not fit ${alg}`);
  }
  if (alg === ALG_RSA && key.algorithm.modulusLength < MIN_RSA_BITS) {
    throw new Error(`the gateway's RSA key is shorter than ${MIN_RSA_BITS} bits`);
  }
  const own = await subtle.exportKey("jwk", key);
  const members = alg === ALG_ECDH ? ["kty", "crv", "x", "y"] : ["kty", "n", "e"];
  if (members.some((m) => own[m] !== jwk?.[m])) {
    throw new Error("the gateway's JWK is not its certificate's key");
  }
  return key;
}

// {"type", "username", "secret"} with the shape check_login_shape enforces;
// the gateway checks again, this only stops a doomed seal early.
function payloadJson(payload) {
  const { type, username = null, secret = null } = payload ?? {};
  const text = (v) => v === null || (typeof v === "string" && v.length > 0 && v.isWellFormed());
  if (!AUTH_TYPES.includes(type) || !text(username) || !text(secret)) {
    throw new Error(`the credential needs a type of ${AUTH_TYPES.join(", ")} and text fields`);
  }
  const shapeOk = type === "anonymous"
    ? username === null && secret === null
    : secret !== null && (type === "key" || username !== null);
  if (!shapeOk) throw new Error(`auth ${type} has the wrong user name / secret combination`);
  return utf8.encode(JSON.stringify({ type, username, secret }));
}

// ECDH-ES+A256KW (RFC 7518 section 4.6): a fresh ephemeral P-256 key, then
// the Concat KDF of section 4.6.2 in one SHA-256 round (keydatalen = 256):
// KEK = SHA-256(u32be(1) || Z || OtherInfo), AlgorithmID = alg, empty apu/apv.
async function wrapForEcdh(cek, gatewayKey) {
  const ephemeral = await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
  const ecdh = { name: "ECDH", public: gatewayKey };
  const z = new Uint8Array(await subtle.deriveBits(ecdh, ephemeral.privateKey, 256));
  const algId = utf8.encode(ALG_ECDH);
  const otherInfo = concatBytes(u32be(algId.length), algId, u32be(0), u32be(0), u32be(256));
  const kekBytes = new Uint8Array(await subtle.digest("SHA-256", concatBytes(u32be(1), z, otherInfo)));
  const kek = await subtle.importKey("raw", kekBytes, "AES-KW", false, ["wrapKey"]);
  z.fill(0); // the non-extractable CryptoKeys hold what is still needed
  kekBytes.fill(0);
  // AES Key Wrap (RFC 3394) of the 32-byte CEK: 40 bytes of encrypted_key.
  const encryptedKey = await subtle.wrapKey("raw", cek, kek, "AES-KW");
  const { kty, crv, x, y } = await subtle.exportKey("jwk", ephemeral.publicKey);
  return { encryptedKey, epk: { kty, crv, x, y } }; // exactly these four members
}

/**
 * Seal `payload` ({type, username, secret}) for the gateway described by
 * `gateway` ({pem, thumbprint, gateway_id, key_type, alg, jwk}), the data
 * source `datasource` and its `target` ({type, server, database, tls, ca_pem}:
 * the gateway opens it only to store or test it for exactly that target).
 * Returns the compact JWE; throws Error on any mismatch.
 */
export async function sealCredential(gateway, datasource, target, payload, issuedAt = Math.floor(Date.now() / 1000)) {
  const kid = await certificateThumbprint(gateway.pem);
  if (kid !== gateway.thumbprint) throw new Error("the gateway certificate does not match its thumbprint");
  const alg = gateway.alg;
  if (!Object.hasOwn(KEY_TYPE_OF_ALG, alg) || KEY_TYPE_OF_ALG[alg] !== gateway.key_type) {
    throw new Error(`refusing alg ${alg}: only ${ALG_ECDH} (ec-p256) and ${ALG_RSA} (rsa-3072)`);
  }
  if (typeof gateway.gateway_id !== "string" || typeof datasource !== "string" || !datasource) {
    throw new Error("a gateway id and a data-source name are needed");
  }
  if (!Number.isSafeInteger(issuedAt) || issuedAt < 0) throw new Error("issuedAt is whole seconds");
  const der = certificateDer(gateway.pem);
  const { validity, spki } = tbsFields(der);
  checkValidity(der, validity, issuedAt);
  const gatewayKey = await gatewayPublicKey(der, spki, alg, gateway.jwk);
  const tgt = await sealedTarget(target);
  const plaintext = payloadJson(payload);

  // The CEK is extractable only so wrapKey may export it wrapped (WebCrypto
  // refuses to wrap a non-extractable key); its raw bytes never reach JS.
  const cek = await subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt"]);
  const header = { alg, enc: "A256GCM", kid, gw: gateway.gateway_id, ds: datasource, tgt, iat: issuedAt, ver: PROFILE_VERSION };
  let encryptedKey;
  if (alg === ALG_ECDH) {
    ({ encryptedKey, epk: header.epk } = await wrapForEcdh(cek, gatewayKey));
  } else {
    encryptedKey = await subtle.wrapKey("raw", cek, gatewayKey, { name: "RSA-OAEP" });
  }

  // The base64url protected header is the GCM additional data (RFC 7516
  // section 5.1 step 14), so gw/ds/tgt/kid cannot be changed without failing the tag.
  const protectedHeader = b64url(utf8.encode(JSON.stringify(header)));
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(12)); // 96-bit (RFC 7518 section 5.3)
  const sealed = new Uint8Array(await subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: utf8.encode(protectedHeader), tagLength: 128 }, cek, plaintext,
  ));
  plaintext.fill(0);
  // WebCrypto appends the tag; JWE carries it as its own part (RFC 7518 section 5.3).
  const ciphertext = sealed.subarray(0, sealed.length - 16);
  const tag = sealed.subarray(sealed.length - 16);
  return [protectedHeader, b64url(encryptedKey), b64url(iv), b64url(ciphertext), b64url(tag)].join(".");
}
