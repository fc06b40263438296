// The board: drag a card to another column, or focus it and press Enter (or its Move… button)
// to choose; Reject… hands the lead back with a reason. The server checks every move against
// the playbook and its refusal is shown as it is given. Columns refresh without a page reload.
"use strict";

(() => {
  const board = document.getElementById("board");
  if (!board) return;
  const reasons = JSON.parse(board.dataset.reasons || "{}");
  const stageNames = JSON.parse(board.dataset.stages || "{}");
  const handBack = board.dataset.handBack;
  const dialog = document.getElementById("move-dialog");
  const form = document.getElementById("move-form");
  const field = (id) => document.getElementById(id);
  let current = null;  // {card, action}
  let dragging = null;

  async function refresh() {
    const response = await fetch("/board/columns" + window.location.search, {headers: {"Accept": "text/html"}});
    if (response.redirected || !response.ok) return;
    board.innerHTML = await response.text();
    LeadRelay.countdowns(board);
  }

  async function send(card, body) {
    const result = await LeadRelay.post(`/board/deals/${card.dataset.deal}`, body);
    LeadRelay.toast(`${card.dataset.name} → ${stageNames[result.stage] || result.stage}`);
    await refresh();
  }

  function focusCard(id) {  // the card where it is now, so the keyboard user carries on from it
    const moved = board.querySelector(`[data-deal="${id}"]`);
    if (moved) moved.focus();
  }

  function options(select, values, labels = {}) {
    select.replaceChildren(...values.map((value) => new Option(labels[value] || value.replaceAll("_", " "), value)));
  }

  function choose(card, action, to = null) {
    current = {card, action};
    const moves = (card.dataset.moves || "").split(",").filter(Boolean);
    field("move-title").textContent = action === "reject" ? "Hand back to marketing" : "Move";
    field("move-lead").textContent = card.dataset.name;
    field("move-error").hidden = true;
    field("move-note").value = "";
    const target = action === "reject" ? handBack : (to || moves.find((stage) => stage !== handBack) || moves[0]);
    options(field("move-to"), action === "reject" ? [handBack] : moves, stageNames);
    field("move-to").value = target;
    field("move-to-label").hidden = action === "reject";
    field("move-owner-label").hidden = !(action === "move" && board.dataset.mayReassign);
    if (!field("move-owner-label").hidden) {
      const owner = field("move-owner");
      if (![...owner.options].some((o) => o.value === "")) owner.prepend(new Option("(keep the owner)", ""));
      owner.value = "";
    }
    update();
    dialog.showModal();
  }

  function update() {
    const to = field("move-to").value;
    const needed = reasons[to] || [];
    options(field("move-reason"), needed);
    field("move-reason-label").hidden = needed.length === 0;
    field("move-value-label").hidden = !(stageNames[to] && to === board.dataset.won);
  }

  field("move-to").addEventListener("change", update);
  field("move-cancel").addEventListener("click", () => dialog.close());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const {card, action} = current;
    const owner = field("move-owner-label").hidden ? "" : field("move-owner").value;
    const body = owner
      ? {action: "reassign", owner, note: field("move-note").value}
      : {action: action === "reject" ? "reject" : "move", to: field("move-to").value,
         reason: field("move-reason-label").hidden ? null : field("move-reason").value,
         note: field("move-note").value};
    try {
      await send(card, body);
      dialog.close();
      focusCard(card.dataset.deal);
    } catch (error) {
      field("move-error").textContent = error.message;
      field("move-error").hidden = false;
    }
  });

  async function drop(card, stage) {
    if (stage === card.dataset.stage) return;
    if ((reasons[stage] || []).length) { choose(card, "move", stage); return; }
    try {
      await send(card, {action: "move", to: stage});
      focusCard(card.dataset.deal);
    } catch (error) {
      LeadRelay.toast(error.message, "error");
    }
  }

  board.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-act]");
    if (!button) return;
    choose(button.closest(".card"), button.dataset.act);
  });
  board.addEventListener("keydown", (event) => {
    const card = event.target.closest && event.target.closest(".card.movable");
    if (event.key === "Enter" && card === event.target) { event.preventDefault(); choose(card, "move"); }
  });
  board.addEventListener("dragstart", (event) => {
    dragging = event.target.closest(".card.movable");
    if (!dragging) return;
    event.dataTransfer.setData("text/plain", dragging.dataset.deal);
    event.dataTransfer.effectAllowed = "move";
    const moves = (dragging.dataset.moves || "").split(",");
    board.querySelectorAll(".column").forEach((column) => {
      column.classList.toggle("allowed", moves.includes(column.dataset.stage));
    });
  });
  board.addEventListener("dragend", () => {
    dragging = null;
    board.querySelectorAll(".column").forEach((column) => column.classList.remove("allowed", "over"));
  });
  board.addEventListener("dragover", (event) => {
    const column = event.target.closest(".column");
    if (!column || !dragging) return;
    event.preventDefault();  // every column takes the drop: the server says why a move is refused
    board.querySelectorAll(".column.over").forEach((c) => c !== column && c.classList.remove("over"));
    column.classList.add("over");
  });
  board.addEventListener("drop", (event) => {
    const column = event.target.closest(".column");
    if (!column || !dragging) return;
    event.preventDefault();
    const card = dragging;
    dragging = null;
    drop(card, column.dataset.stage);
  });

  setInterval(() => { if (!dialog.open && !dragging && !document.hidden) refresh(); }, 30000);
})();
