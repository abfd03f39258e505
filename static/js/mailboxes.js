// Progressive enhancement of the mailbox list: a header box that ticks every row of the page.
document.addEventListener("DOMContentLoaded", () => {
  const all = document.querySelector("[data-tick-all]");
  const boxes = Array.from(document.querySelectorAll("input[name=mailbox_ids]:not([disabled])"));
  if (!all || boxes.length === 0) return;
  all.hidden = false;
  all.addEventListener("change", () => boxes.forEach((box) => { box.checked = all.checked; }));
});
