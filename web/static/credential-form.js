// The credential form: seal in the browser, then test or save.
//
// The secret never leaves this page in clear: it is sealed with WebCrypto
// (seal.js) to the gateway certificate into an EncryptedCredential, and only
// that is sent. The secret input has no name, so even a form submitted
// without this script would not carry it.
import { sealCredential, certificateThumbprint } from "./seal.js";

const form = document.getElementById("credential-form");
const result = document.getElementById("result");
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const field = (id) => document.getElementById(id).value.trim();
let gatewayFacts = null;

async function gateway() {
  if (gatewayFacts === null) {
    const response = await fetch(form.dataset.certificate, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`cannot fetch the gateway certificate (${response.status})`);
    gatewayFacts = await response.json();
    // Show the thumbprint this browser computed itself, for comparison with `gwvault cert show`.
    document.getElementById("thumbprint").textContent = await certificateThumbprint(gatewayFacts.pem);
  }
  return gatewayFacts;
}

function endpoint(kind) {
  return form.dataset[kind].replace("NAME", encodeURIComponent(field("name")));
}

async function sealedBody() {
  const auth = field("auth");
  const secret = document.getElementById("secret").value;
  const payload = {
    type: auth,
    username: auth === "anonymous" ? null : field("username") || null,
    secret: auth === "anonymous" ? null : secret,
  };
  const target = {
    type: field("type"),
    server: field("server"),
    database: field("database") || null,
    tls: field("tls"),
    ca_pem: field("ca_pem") || null,
  };
  const sealed = await sealCredential(await gateway(), field("name"), target, payload);
  return JSON.stringify({ ...target, encrypted_credential: sealed });
}

async function send(kind, method) {
  result.className = "";
  result.textContent = kind === "test" ? "Testing…" : "Saving…";
  try {
    const response = await fetch(endpoint(kind), {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
      body: await sealedBody(),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error ? answer.error.message : `HTTP ${response.status}`);
    return answer;
  } catch (error) {
    result.className = "error";
    result.textContent = error.message;
    return null;
  }
}

document.getElementById("test").addEventListener("click", async () => {
  const answer = await send("test", "POST");
  if (answer) {
    result.className = answer.ok ? "ok" : "error";
    // The server's own words come only to admins (answer.detail); others get a fixed sentence.
    result.textContent = answer.detail ? `${answer.message} (${answer.detail})` : answer.message;
  }
});

// A sqlite file has no TLS: its only mode is disable.
document.getElementById("type").addEventListener("change", () => {
  if (field("type") === "sqlite") document.getElementById("tls").value = "disable";
});

document.getElementById("save").addEventListener("click", async () => {
  const answer = await send("save", "PUT");
  if (answer) {
    document.getElementById("secret").value = "";
    result.className = "ok";
    result.textContent = `Saved ${answer.name} (version ${answer.version}).`;
    form.dispatchEvent(new CustomEvent("credential-saved", { detail: answer }));
    if (form.dataset.done) window.location.assign(form.dataset.done);
  }
});

gateway().catch((error) => { result.className = "error"; result.textContent = error.message; });
