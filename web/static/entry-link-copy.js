// The new entry link, copied to the clipboard with one click. The link is
// shown once (the page that made it); the script only reads it from the
// field, so nothing but the clipboard ever receives it.
const field = document.getElementById("created-url");
const result = document.getElementById("copy-result");

document.getElementById("copy-link").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(field.value);
    result.className = "ok";
    result.textContent = "Copied. Paste it into your message now: it is not shown again.";
  } catch {
    // No clipboard (an insecure context or a refused permission): select it for Ctrl-C.
    field.select();
    result.className = "error";
    result.textContent = "The browser refused to copy; the link is selected, press Ctrl-C.";
  }
});
