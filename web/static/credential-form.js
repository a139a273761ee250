// The credential form: seal in the browser, then test or save.
//
// The secret never leaves this page in clear: it is sealed with WebCrypto
// (seal.js) to the gateway certificate into an EncryptedCredential, and only
// that is sent. The secret input has no name, so even a form submitted
// without this script would not carry it.
//
// A stored credential's secret stays in the gateway: left empty, Test asks the
// gateway to test the stored credential (a request with no body) and Save has
// nothing to send. The secret is sealed for one target (type, server,
// database, TLS mode, CA) and one login (auth, user name), so a change of any
// of them needs the secret again; the gateway refuses such a change without a
// new seal, and this page says so before sending anything.
//
// Both buttons are submit buttons: the browser's own checks (required,
// pattern, maxlength, and the custom ones set here with setCustomValidity)
// run first, and the submit handler tells Test from Save by event.submitter.
import { sealCredential, certificateThumbprint } from "./seal.js";

const form = document.getElementById("credential-form");
const result = document.getElementById("result");
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const control = (id) => document.getElementById(id);
const value = (id) => control(id).value.trim();
const stored = form.dataset.stored === "yes";
const secretLimit = Number(form.dataset.secretBytes);
const fixedTarget = control("type").disabled; // an entry link fixes the target
const VERIFYING = ["verify-full", "verify-ca"];
let gatewayFacts = null;

// What each type asks for: the server's label and hint, and which fields apply.
const TYPES = {
  postgresql: { server: "Server", hint: "host:port (port 5432 when none is given)", database: true, tls: true, auths: ["basic"] },
  mysql: { server: "Server", hint: "host:port (port 3306 when none is given)", database: true, tls: true, auths: ["basic"] },
  sqlserver: { server: "Server", hint: "host:port (port 1433 when none is given); TLS verify-full or verify-ca", database: true, tls: true, auths: ["basic"] },
  http: { server: "URL", hint: "https://host[:port]/path, or host[:port] (https assumed)", database: false, tls: true, auths: ["key", "basic", "anonymous"] },
  sqlite: { server: "Database file path", hint: "the absolute path of the SQLite file on the gateway host, e.g. /srv/data/sales.db", pattern: "/.*", database: false, tls: false, auths: ["anonymous"] },
};

function kind() {
  return TYPES[control("type").value] ?? TYPES.postgresql;
}

function showField(name, shown) {
  const wrapper = form.querySelector(`[data-field="${name}"]`);
  wrapper.hidden = !shown;
  // A hidden field is disabled too: it is not checked and not sent.
  const input = control(name);
  if (!(fixedTarget && input.tagName === "SELECT" && name !== "auth")) input.disabled = !shown;
}

// Fields follow the type (and the login follows the auth type).
function adaptToType() {
  const k = kind();
  control("server-label").textContent = k.server;
  control("server-hint").textContent = k.hint;
  // The gateway takes only an absolute path for a SQLite file.
  if (k.pattern) control("server").pattern = k.pattern;
  else control("server").removeAttribute("pattern");
  if (!k.tls) control("tls").value = "disable";
  const auth = control("auth");
  for (const option of auth.options) {
    option.disabled = option.hidden = !k.auths.includes(option.value);
  }
  if (!k.auths.includes(auth.value)) auth.value = k.auths[0];
  showField("database", k.database);
  showField("tls", k.tls);
  showField("ca_pem", k.tls && VERIFYING.includes(control("tls").value));
  // The auth select stays, with only the type's choices: it says how the login is made.
  showField("username", auth.value === "basic");
  showField("secret", auth.value !== "anonymous");
  showCleartextWarning();
}

// The rule of vault/connectors/cleartext.py (the CLI refuses such a target
// without --allow-cleartext): a server reached without TLS, not on loopback.
// Here it is a warning beside the server; the gateway still decides what it sends.
function hostOf(server, isUrl) {
  if (isUrl) {
    try { return new URL(server).hostname.replace(/^\[|\]$/g, ""); } catch { return ""; }
  }
  const bracketed = /^\[([^\]]+)\]/.exec(server);
  if (bracketed) return bracketed[1];
  return server.split(":").length === 2 ? server.split(":")[0] : server;
}

function isLoopback(host) {
  const h = host.toLowerCase();
  return h === "localhost" || h === "localhost." || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

function showCleartextWarning() {
  const type = control("type").value;
  const server = value("server");
  const plain = type === "http"
    ? server.toLowerCase().startsWith("http://")
    : type !== "sqlite" && control("tls").value === "disable";
  const warning = control("cleartext-warning");
  warning.hidden = !(server && plain && !isLoopback(hostOf(server, type === "http")));
  warning.textContent = warning.hidden ? "" : "Warning: no TLS to a host on the network: whatever"
    + " is sent to it (the login, the data) crosses the network in clear.";
}

// The target and login the form names now, as they would be sealed.
function snapshot() {
  const k = kind();
  const tls = k.tls ? control("tls").value : "disable";
  const auth = control("auth").value;
  return {
    target: {
      type: control("type").value,
      server: value("server"),
      database: k.database ? value("database") || null : null,
      tls,
      ca_pem: k.tls && VERIFYING.includes(tls) ? value("ca_pem") || null : null,
    },
    login: { auth, username: auth === "basic" ? value("username") || null : null },
  };
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
let initial = null; // the stored credential's target and login, as the page showed them

// Why the secret must be typed now, or null when the stored one will do.
function secretNeeded() {
  const now = snapshot();
  if (now.login.auth === "anonymous") return null;
  if (!stored) return `Enter the secret: auth ${now.login.auth} logs in with it.`;
  if (!same(now.target, initial.target)) {
    return "The type, server, database, TLS or CA changed: enter the secret again. It is sealed for one server and is never sent to another.";
  }
  if (!same(now.login, initial.login)) {
    return "The user name or authentication changed: enter the secret again; it is sealed with them.";
  }
  return null;
}

function secretProblem() {
  const secret = control("secret").value;
  if (control("secret").disabled) return "";
  if (secret === "") return secretNeeded() ?? "";
  if (!secret.isWellFormed()) return "The secret is not valid text.";
  const bytes = new TextEncoder().encode(secret).length;
  if (bytes > secretLimit) {
    return `The secret is ${bytes.toLocaleString("en")} bytes; a secret is at most ${secretLimit.toLocaleString("en")} bytes.`;
  }
  return "";
}

// The checks HTML attributes cannot say, as the browser's own validity.
function updateValidity() {
  control("secret").setCustomValidity(secretProblem());
  const needed = control("secret").value === "" && stored ? secretNeeded() : null;
  // Once the same words show as the secret's error, the notice would repeat them.
  control("secret-needed").hidden = needed === null || !control("secret-error").hidden;
  control("secret-needed").textContent = needed ?? "";
}

function showError(id, message) {
  const input = control(id);
  const line = control(`${id}-error`);
  input.setAttribute("aria-invalid", "true");
  line.textContent = message;
  line.hidden = false;
}

function clearError(id) {
  const line = document.getElementById(`${id}-error`);
  if (!line) return;
  control(id).removeAttribute("aria-invalid");
  line.textContent = "";
  line.hidden = true;
}

function clearErrors() {
  for (const line of form.querySelectorAll(".field-error")) clearError(line.id.replace(/-error$/, ""));
}

// The gateway's 400 names a field in words; the error goes beside that field
// when it is shown, else it stays at the form's result line.
const FIELD_WORDS = [
  [/\bexpiry/, "expires_at"],
  [/rotation period/, "rotate_every"],
  [/\bcontact\b/, "contact"],
  [/EncryptedCredential|encrypted_credential/, null],
  [/data-source name/, "name"],
  [/data source type/, "type"],
  [/secret|bearer token/i, "secret"],
  [/user name/i, "username"],
  [/\bauth\b/, "auth"],
  [/\bCA\b/, "ca_pem"],
  [/\bTLS\b/, "tls"],
  [/database name/, "database"],
  [/\b(server|host|port|URL|path|SQLite)\b/i, "server"],
];

function fieldFor(message) {
  for (const [words, id] of FIELD_WORDS) {
    if (words.test(message)) return id && !control(id).disabled && !control(id).readOnly ? id : null;
  }
  return null;
}

function say(kindOfLine, text) {
  result.className = kindOfLine;
  result.textContent = text;
}

function refusal(verb, message) {
  const id = fieldFor(message);
  if (id === null) return say("error", `${verb}: ${message}`);
  showError(id, message);
  control(id).focus();
  const label = form.querySelector(`label[for="${id}"]`).textContent;
  say("error", `${verb}: see ${label}.`);
}

async function gateway() {
  if (gatewayFacts === null) {
    const response = await fetch(form.dataset.certificate, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`cannot fetch the gateway certificate (${response.status})`);
    gatewayFacts = await response.json();
    // Show the thumbprint this browser computed itself, for comparison with `gwvault cert show`.
    control("thumbprint").textContent = await certificateThumbprint(gatewayFacts.pem);
  }
  return gatewayFacts;
}

function endpoint(kindOfCall) {
  return form.dataset[kindOfCall].replace("NAME", encodeURIComponent(value("name")));
}

// The owner's dates as the form has them (empty: none), or {} where the form
// has no such fields (an entry link, a caller who may only test).
function lifeMembers() {
  if (!control("expires_at")) return {};
  const typed = (id) => value(id) || null;
  return { expires_at: typed("expires_at"), rotate_every: typed("rotate_every"), contact: typed("contact") };
}
const initialLife = lifeMembers();

async function sealedBody(extra = {}) {
  const { target, login } = snapshot();
  const payload = {
    type: login.auth,
    username: login.username,
    secret: login.auth === "anonymous" ? null : control("secret").value,
  };
  const sealed = await sealCredential(await gateway(), value("name"), target, payload);
  return JSON.stringify({ ...target, encrypted_credential: sealed, ...extra });
}

// What a status without a JSON error means to a person.
function statusMessage(status, said) {
  if (status === 413) return `${said ?? "the request is too large"}: a secret is at most ${secretLimit} bytes`;
  if (said) return said;
  if (status === 429) return "too many connection tests at once; try again in a few seconds";
  if (status === 401) return "the session ended; sign in again";
  return `the gateway answered HTTP ${status}`;
}

// One request; the JSON answer, or null after the refusal is shown.
async function send(verb, method, url, body) {
  const headers = { "X-CSRF-Token": csrfToken };
  if (body !== null) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, credentials: "same-origin", headers, body });
  } catch {
    say("error", `${verb}: the gateway closed the connection without an answer. Check the list before trying again.`);
    return null;
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    refusal(verb, statusMessage(response.status, answer?.error?.message));
    return null;
  }
  return answer;
}

async function testConnection() {
  const useStored = stored && control("secret").value === "" && secretNeeded() === null;
  say("", "Testing…");
  const body = useStored ? null : await sealedBody();
  const answer = await send("Not tested", "POST", endpoint("test"), body);
  if (answer === null) return;
  // The server's own words come only to admins (answer.detail); others get a fixed sentence.
  const text = answer.detail ? `${answer.message} (${answer.detail})` : answer.message;
  say(answer.ok ? "ok" : "error", useStored ? `${text} Tested with the stored secret.` : text);
}

async function save() {
  if (stored && control("secret").value === "" && secretNeeded() === null && same(snapshot(), initial)) {
    if (same(lifeMembers(), initialLife)) {
      say("", "Nothing changed: the stored credential stays as it is.");
      return;
    }
    // Only the owner's dates changed: they are saved alone, the secret stays sealed as it is.
    say("", "Saving…");
    if (await send("Not saved", "PATCH", endpoint("life"), JSON.stringify(lifeMembers())) !== null) {
      window.location.assign(form.dataset.done);
    }
    return;
  }
  say("", "Saving…");
  const answer = await send("Not saved", "PUT", endpoint("save"), await sealedBody(lifeMembers()));
  if (answer === null) return;
  control("secret").value = "";
  // The gateway set a one-time message for the next page ("Saved credential …
  // (version N).") when this is a signed-in browser; an entry link has no next page.
  if (form.dataset.done) {
    window.location.assign(form.dataset.done);
  } else {
    say("ok", `Saved ${answer.name} (version ${answer.version}).`);
    // An entry page goes inert and says the link is used up (entry-finished.js).
    form.dispatchEvent(new CustomEvent("credential-saved", { detail: answer }));
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  try {
    if (event.submitter?.value === "save") await save();
    else await testConnection();
  } catch (error) {
    say("error", error.message); // sealing refused what the checks above let through
  }
});

// The browser's checks failed: say why beside the field, not only in its bubble.
form.addEventListener("invalid", (event) => {
  say("", ""); // an earlier answer no longer applies
  showError(event.target.id, event.target.validationMessage);
  updateValidity();
}, true);

form.addEventListener("input", (event) => {
  updateValidity();
  clearError(event.target.id);
  if (event.target.id === "server") showCleartextWarning();
});

form.addEventListener("change", (event) => {
  if (["type", "tls", "auth"].includes(event.target.id)) adaptToType();
  updateValidity();
});

adaptToType();
initial = snapshot();
updateValidity();
gateway().catch((error) => say("error", error.message));
