// The web UI's only script: copy buttons, delete confirmations, "select all", and "/" to
// search. Every page works without it (buttons it drives stay hidden).
"use strict";

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.appendChild(area);
  area.select();
  const done = document.execCommand("copy");
  area.remove();
  return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", () => {
      copyText(button.dataset.copy).then(
        () => flash(button, "Copied"),
        () => flash(button, "Press Ctrl+C"),
      );
    });
  }
}

function flash(button, text) {
  const before = button.textContent;
  button.textContent = text;
  button.classList.add("done");
  setTimeout(() => {
    button.textContent = before;
    button.classList.remove("done");
  }, 1500);
}

function setUpConfirmations() {
  for (const form of document.querySelectorAll("form")) {
    form.addEventListener("submit", (event) => {
      const button = event.submitter;
      if (!button || !button.dataset.confirm) return;
      const chosen = form.querySelectorAll("input[name=tag]:checked").length;
      if (chosen === 0) {
        event.preventDefault();
        alert("Select the tags to delete first.");
        return;
      }
      if (!confirm(button.dataset.confirm.replace("the selected tags", chosen + " tag" + (chosen === 1 ? "" : "s")))) {
        event.preventDefault();
        return;
      }
      const confirmed = document.createElement("input");
      confirmed.type = "hidden";
      confirmed.name = "confirm";
      confirmed.value = "yes";
      form.appendChild(confirmed);
    });
  }
}

function setUpSelectAll() {
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    const form = all.form;
    const boxes = () => form.querySelectorAll("input[name=tag][type=checkbox]");
    all.hidden = boxes().length === 0;
    all.addEventListener("change", () => {
      for (const box of boxes()) box.checked = all.checked;
    });
  }
}

function setUpShortcuts() {
  document.addEventListener("keydown", (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target.isContentEditable) return;
    const field = document.querySelector("[data-shortcut='/']");
    if (field) {
      event.preventDefault();
      field.focus();
      field.select();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCopyButtons();
  setUpConfirmations();
  setUpSelectAll();
  setUpShortcuts();
});
