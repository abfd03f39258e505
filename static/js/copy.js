// Copy buttons for read-only fields (templates/_macros/copy.html): <button data-copy-target="field-id">.
// Progressive: the button stays hidden without JavaScript, and where the clipboard cannot be written
// (an insecure origin, a refused permission) the field's text is selected for Ctrl+C instead.
(() => {
  const CONFIRM_MS = 4000;

  function statusFor(field) {
    return document.getElementById(`${field.id}-copy-status`);
  }

  function say(field, text) {
    const status = statusFor(field);
    if (status) status.textContent = text;
  }

  function selectAll(field) {
    field.focus();
    field.select();
    field.setSelectionRange(0, field.value.length);
  }

  async function copy(button, field) {
    const label = button.firstChild.textContent;
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
      await navigator.clipboard.writeText(field.value);
    } catch (error) {
      selectAll(field);
      say(field, "Selected: press Ctrl+C (⌘C on a Mac) to copy it.");
      return;
    }
    button.firstChild.textContent = "Copied";
    say(field, "Copied to the clipboard.");
    window.setTimeout(() => { button.firstChild.textContent = label; }, CONFIRM_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("button[data-copy-target]").forEach((button) => {
      const field = document.getElementById(button.dataset.copyTarget);
      if (!field) return;
      button.hidden = false;
      button.addEventListener("click", () => copy(button, field));
      // Clicking into the field selects the whole link, so that a manual copy never misses a part.
      field.addEventListener("focus", () => field.select());
    });
  });
})();
