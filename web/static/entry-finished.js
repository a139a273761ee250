// The entry page after a successful save: the link is used up, so the form
// goes inert and the page says so (credential-form.js sends "credential-saved").
const form = document.getElementById("credential-form");
const finished = document.getElementById("entry-finished");

form.addEventListener("credential-saved", () => {
  for (const control of form.elements) control.disabled = true;
  finished.hidden = false;
  finished.focus();
});
