// cnnsize's drawing page: search, select a layer (its inputs highlighted, its row shown), sort the table.
// Inlined into the page by cnnsize.render.draw_formats.page: the page fetches nothing.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var nodes = Array.prototype.slice.call(document.querySelectorAll("#graph .node"));
  var rows = Array.prototype.slice.call(document.querySelectorAll("#layers tbody tr"));
  var heads = ["name", "type", "output", "params", "macs", "activations", "memory bytes"];

  function clear(cls) {
    nodes.forEach(function (n) { n.classList.remove(cls); });
  }

  function select(i) {
    clear("sel");
    clear("src");
    rows.forEach(function (r) { r.classList.remove("sel"); });
    nodes[i].classList.add("sel");
    data.edges.forEach(function (e) { if (e[1] === i) { nodes[e[0]].classList.add("src"); } });
    var row = rows.filter(function (r) { return Number(r.dataset.index) === i; })[0];
    if (row) { row.classList.add("sel"); }
    var info = document.getElementById("info");
    info.textContent = "";
    data.rows[i].forEach(function (value, k) {
      var span = document.createElement("span");
      span.textContent = heads[k] + ": " + value + "   ";
      info.appendChild(span);
    });
  }

  nodes.forEach(function (n) {
    n.addEventListener("click", function () { select(Number(n.dataset.index)); });
  });
  rows.forEach(function (r) {
    r.addEventListener("click", function () {
      var i = Number(r.dataset.index);
      select(i);
      nodes[i].scrollIntoView({block: "center", inline: "center"});
    });
  });

  document.getElementById("search").addEventListener("input", function (ev) {
    var text = ev.target.value.toLowerCase();
    clear("hit");
    var hits = text ? nodes.filter(function (n) {
      return n.dataset.layer.toLowerCase().indexOf(text) >= 0;
    }) : [];
    hits.forEach(function (n) { n.classList.add("hit"); });
    document.getElementById("found").textContent = text ? hits.length + " found" : "";
    if (hits.length) { hits[0].scrollIntoView({block: "center", inline: "center"}); }
  });

  var order = {};
  Array.prototype.forEach.call(document.querySelectorAll("#layers th"), function (th, k) {
    th.addEventListener("click", function () {
      order[k] = !order[k];
      var body = document.querySelector("#layers tbody");
      rows.slice().sort(function (a, b) {
        var x = data.rows[Number(a.dataset.index)][k], y = data.rows[Number(b.dataset.index)][k];
        var c = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
        return order[k] ? c : -c;
      }).forEach(function (r) { body.appendChild(r); });
    });
  });
})();
