// LeadRelay pages: calls back to the server with the session's CSRF token, messages, and the
// SLA countdowns (green until the warning time, amber until due, red once breached).
"use strict";

const LeadRelay = (() => {
  const csrf = () => document.body.dataset.csrf || "";

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf()},
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    let data = {};
    try { data = await response.json(); } catch (_) { /* an empty or non-JSON answer */ }
    if (!response.ok) {
      const error = new Error(data.message || `the server answered ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  let toastTimer = null;
  function toast(message, kind = "info") {
    const box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.className = kind;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 9000 : 4000);
  }

  function duration(ms) {
    const minutes = Math.floor(Math.abs(ms) / 60000);
    const days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), rest = minutes % 60;
    if (days) return `${days} d ${hours} h`;
    if (hours) return `${hours} h ${rest} min`;
    return `${rest} min`;
  }

  function countdowns(root = document) {
    const now = Date.now();
    root.querySelectorAll("[data-due]").forEach((clock) => {
      const due = Date.parse(clock.dataset.due), warn = Date.parse(clock.dataset.warn);
      const left = due - now;
      const state = left <= 0 ? "red" : (now >= warn ? "amber" : "green");
      clock.classList.remove("green", "amber", "red");
      clock.classList.add(state);
      const text = clock.querySelector(".countdown");
      if (text) text.textContent = left <= 0 ? `overdue ${duration(left)}` : `${duration(left)} left`;
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    countdowns();
    setInterval(countdowns, 30000);
    document.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  });

  return {post, toast, countdowns};
})();
