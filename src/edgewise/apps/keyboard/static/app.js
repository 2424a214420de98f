// Edgewise keyboard page: every keystroke posts the text before the caret to /api/suggest and fills the chips.
// Responses can arrive out of order while the user types fast, so each request carries a sequence number and
// only the newest answer is drawn.
(() => {
  "use strict";

  const input = document.getElementById("input");
  const chips = [...document.querySelectorAll(".chip")].sort((a, b) => a.dataset.rank - b.dataset.rank);
  const session = Math.random().toString(36).slice(2, 12);
  let seq = 0;
  let drawn = 0;
  let shift = false;

  const fmtBytes = (n) => (n >= 1e6 ? (n / 1e6).toFixed(1) + " MB" : (n / 1e3).toFixed(0) + " kB");
  const $ = (id) => document.getElementById(id);

  function beforeCaret() {
    return input.value.slice(0, input.selectionStart);
  }

  function draw(r, mySeq) {
    if (mySeq < drawn) return;
    drawn = mySeq;
    chips.forEach((chip, i) => {
      chip.textContent = r.suggestions[i] || "";
    });
    $("latency").textContent = r.latency_ms.toFixed(1) + " ms";
    if (r.learned && r.learned.length) refreshInfo();
  }

  async function post(path, body) {
    const res = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session, ...body }),
    });
    if (!res.ok) throw new Error(path + " answered " + res.status);
    return res.json();
  }

  async function update() {
    const mySeq = ++seq;
    try {
      draw(await post("/api/suggest", { text: beforeCaret() }), mySeq);
    } catch (e) {
      console.error(e);
    }
  }

  async function accept(rank) {
    const word = chips[rank].textContent;
    if (!word) return;
    const after = input.value.slice(input.selectionStart);
    const mySeq = ++seq;
    chips[rank].classList.add("flash");
    setTimeout(() => chips[rank].classList.remove("flash"), 160);
    const r = await post("/api/accept", { text: beforeCaret(), word });
    input.value = r.text + after;
    input.setSelectionRange(r.text.length, r.text.length);
    input.focus();
    draw(r, mySeq);
  }

  function insert(s) {
    const start = input.selectionStart;
    const end = input.selectionEnd;
    input.setRangeText(s, start, end, "end");
    input.focus();
    update();
  }

  function backspace() {
    const start = input.selectionStart;
    const end = input.selectionEnd;
    if (start === end && start > 0) input.setRangeText("", start - 1, end, "end");
    else input.setRangeText("", start, end, "end");
    input.focus();
    update();
  }

  async function send() {
    const text = input.value.trim();
    if (!text) return;
    // A trailing newline finishes the last word, so the server learns it too.
    await post("/api/suggest", { text: input.value + "\n" }).catch(() => {});
    const bubble = document.createElement("div");
    bubble.className = "bubble me";
    bubble.textContent = text;
    $("thread").appendChild(bubble);
    $("thread").scrollTop = $("thread").scrollHeight;
    input.value = "";
    update();
  }

  async function refreshInfo() {
    try {
      const info = await (await fetch("/api/info")).json();
      $("model").textContent = info.model;
      $("model").title = info.model;
      $("size").textContent = fmtBytes(info.model_bytes);
      const sub = document.createElement("small");
      sub.textContent = info.backend + " · " + info.precision;
      $("size").appendChild(sub);
      $("learned").textContent = info.learning ? info.personal_words.toLocaleString() : "off";
    } catch (e) {
      console.error(e);
    }
  }

  // --- on-screen keys -----------------------------------------------------------------------------------
  const rows = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];
  function buildKeys() {
    const keys = $("keys");
    keys.innerHTML = "";
    rows.forEach((letters, r) => {
      const row = document.createElement("div");
      row.className = "row";
      if (r === 2) row.appendChild(key("⇧", "wide shift", () => { shift = !shift; buildKeys(); }));
      for (const c of letters) {
        const ch = shift ? c.toUpperCase() : c;
        row.appendChild(key(ch, "", () => { insert(ch); if (shift) { shift = false; buildKeys(); } }));
      }
      if (r === 2) row.appendChild(key("⌫", "wide", backspace));
      keys.appendChild(row);
    });
    const last = document.createElement("div");
    last.className = "row";
    last.appendChild(key(",", "wide", () => insert(",")));
    last.appendChild(key("space", "space", () => insert(" ")));
    last.appendChild(key(".", "wide", () => insert(".")));
    last.appendChild(key("return", "ret", () => insert("\n")));
    keys.appendChild(last);
    if (shift) keys.querySelector(".shift").classList.add("on");
  }

  function key(label, cls, onPress) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "key " + cls;
    b.textContent = label;
    b.tabIndex = -1;
    b.addEventListener("mousedown", (e) => e.preventDefault()); // keep the caret in the text area
    b.addEventListener("click", onPress);
    return b;
  }

  // --- wiring -------------------------------------------------------------------------------------------
  input.addEventListener("input", update);
  input.addEventListener("click", update);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Tab") {
      e.preventDefault();
      accept(0);
    } else if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) {
      e.preventDefault();
      send();
    }
  });
  chips.forEach((chip, rank) => {
    chip.addEventListener("mousedown", (e) => e.preventDefault());
    chip.addEventListener("click", () => accept(rank));
  });
  $("send").addEventListener("click", send);
  $("forget").addEventListener("click", async () => {
    await post("/api/forget", {}).catch(() => {});
    refreshInfo();
  });

  buildKeys();
  refreshInfo();
  update();
  input.focus();
})();
