// import-export wires its "Select all" field toggle with an inline onchange
// attribute, which our Content-Security-Policy (no 'unsafe-inline') blocks.
// Bind the same handler from a file instead.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("input.select-toggle").forEach((toggle) => {
    toggle.addEventListener("change", (event) => onSelectToggleChange(event));
  });
});
