// The page that shows a new API token once.  The history entry becomes the
// token list, so a reload or a Back-then-Forward fetches the list (a GET), not
// this page again; the copy button puts the token on the clipboard.
const box = document.getElementById("token-once");
const field = document.getElementById("token");
const status = document.getElementById("copy-status");

history.replaceState(null, "", box.dataset.listUrl);

document.getElementById("copy-token").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(field.value);
    status.textContent = "Copied.";
  } catch {
    field.select();
    status.textContent = "Copying was refused here; the token is selected: press Ctrl+C.";
  }
});
