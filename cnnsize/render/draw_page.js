// cnnsize's drawing page: views at several folding depths (a click on a block unfolds it), search, the selected
// layer's figures, inputs and receptive field, and a sortable table of every layer.
// Inlined into the page by cnnsize.render.draw_formats.page: the page fetches nothing.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var views = Array.prototype.slice.call(document.querySelectorAll("#graph .view"));
  var rows = Array.prototype.slice.call(document.querySelectorAll("#layers tbody tr"));
  var heads = ["name", "type", "output", "params", "macs", "activations", "memory bytes"];
  var level = data.start;
  var selected = null;

  function nodesOf(k) {
    return Array.prototype.slice.call(views[k].querySelectorAll(".node"));
  }

  function ensure(k) {
    // a view other than the first is kept as text until it is first shown
    if (!views[k].firstElementChild) {
      views[k].innerHTML = document.getElementById("view" + k).textContent;
      listen(k);
    }
  }

  function listen(k) {
    nodesOf(k).forEach(function (n) {
      n.addEventListener("click", function () {
        var i = Number(n.dataset.index);
        if (selected === i && data.levels[k].folded[i] > 1 && k < views.length - 1) {
          unfold(data.levels[k].rows[i][0]);  // a second click on a block unfolds it
        } else {
          select(i);
        }
      });
    });
  }

  function show(k) {
    ensure(k);
    level = k;
    views.forEach(function (v, i) { v.hidden = i !== k; });
    Array.prototype.forEach.call(document.querySelectorAll("#levels button"), function (b) {
      b.classList.toggle("on", Number(b.dataset.level) === k);
    });
    search();
  }

  function byName(k, name) {
    // the box of view k that holds layer `name`: itself, or the block its dotted name is inside
    var best = -1, bestLength = -1;
    data.levels[k].rows.forEach(function (r, i) {
      var box = r[0];
      if ((name === box || name.indexOf(box + ".") === 0) && box.length > bestLength) {
        best = i;
        bestLength = box.length;
      }
    });
    return best;
  }

  function drawField(i) {
    var svg = document.getElementById("rf");
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var rf = data.levels[level].rf[i];
    var input = data.input.slice(1);
    var ns = "http://www.w3.org/2000/svg";
    function add(tag, attrs, text) {
      var el = document.createElementNS(ns, tag);
      Object.keys(attrs).forEach(function (a) { el.setAttribute(a, attrs[a]); });
      if (text) { el.textContent = text; }
      svg.appendChild(el);
      return el;
    }
    if (!rf || input.length < 1 || input.some(function (v) { return typeof v !== "number"; })) {
      add("text", {x: 4, y: 16, "font-size": 11}, rf ? "receptive field: symbolic input" : "no receptive field here");
      return;
    }
    var h = input.length > 1 ? input[input.length - 2] : 1, w = input[input.length - 1];
    var k = rf.size.length;
    var scale = 140 / Math.max(h, w);  // the input at most 140 px a side, from (20, 18)
    add("rect", {x: 20, y: 18, width: w * scale, height: h * scale, fill: "#eef", stroke: "#336", "class": "input"});
    var out = rf.out.slice(rf.out.length - k);
    var win = [];  // per axis [from, to): the window of the middle output position, clipped to the input
    for (var a = 0; a < k; a++) {
      var centre = Math.floor((out[a] || 1) / 2);
      var from = rf.start[a] + centre * rf.stride[a];
      var size = input[input.length - k + a];
      win.push([Math.max(0, from), Math.min(size, from + rf.size[a])]);
    }
    var wy = k > 1 ? win[k - 2] : [0, h], wx = win[k - 1];
    add("rect", {x: 20 + wx[0] * scale, y: 18 + wy[0] * scale, width: Math.max(1, (wx[1] - wx[0]) * scale),
                 height: Math.max(1, (wy[1] - wy[0]) * scale), fill: "rgba(220,30,30,0.35)", stroke: "#c00",
                 "class": "window"});
    add("text", {x: 4, y: 11, "font-size": 10}, "receptive field " + rf.size.join("×") + " on " + input.join("×"));
    add("text", {x: 4, y: 176, "font-size": 10}, "stride " + rf.stride.join("×") + ", middle output position");
  }

  function select(i) {
    var nodes = nodesOf(level);
    nodes.forEach(function (n) { n.classList.remove("sel", "src"); });
    rows.forEach(function (r) { r.classList.remove("sel"); });
    selected = i;
    nodes[i].classList.add("sel");
    var lv = data.levels[level];
    var inputs = [];
    lv.edges.forEach(function (e) {
      if (e[1] === i) { nodes[e[0]].classList.add("src"); inputs.push(lv.rows[e[0]][0]); }
    });
    var name = lv.rows[i][0];
    rows.forEach(function (r) {
      var n = r.dataset.layer;
      if (n === name || n.indexOf(name + ".") === 0) { r.classList.add("sel"); }
    });
    var info = document.getElementById("info");
    info.textContent = "";
    lv.rows[i].forEach(function (value, k) {
      var line = document.createElement("div");
      line.textContent = heads[k] + ": " + value;
      info.appendChild(line);
    });
    var from = document.createElement("div");
    from.textContent = "reads: " + (inputs.length ? inputs.join(", ") : "the input");
    info.appendChild(from);
    if (lv.folded[i] > 1 && level < views.length - 1) {
      addButton(info, "unfold", function () { unfold(name); });
    }
    if (level > 0 && name.indexOf(".") >= 0) {
      addButton(info, "fold", function () { fold(name); });
    }
    drawField(i);
  }

  function addButton(parent, text, act) {
    var b = document.createElement("button");
    b.textContent = text;
    b.className = text;
    b.addEventListener("click", act);
    parent.appendChild(b);
  }

  function reveal(k, name) {
    show(k);
    var i = byName(k, name);
    if (i < 0) {  // a block: its first layer
      i = data.levels[k].rows.findIndex(function (r) { return r[0].indexOf(name + ".") === 0; });
    }
    if (i >= 0) {
      select(i);
      nodesOf(k)[i].scrollIntoView({block: "center", inline: "center"});
    }
  }

  function unfold(name) { reveal(level + 1, name); }

  function fold(name) {
    var k = level - 1;
    show(k);
    var i = byName(k, name);
    if (i >= 0) { select(i); nodesOf(k)[i].scrollIntoView({block: "center", inline: "center"}); }
  }

  listen(level);
  Array.prototype.forEach.call(document.querySelectorAll("#levels button"), function (b) {
    b.addEventListener("click", function () { show(Number(b.dataset.level)); selected = null; });
  });
  rows.forEach(function (r) {
    r.addEventListener("click", function () { reveal(views.length - 1, r.dataset.layer); });
  });

  function search() {
    var text = document.getElementById("search").value.toLowerCase();
    var nodes = nodesOf(level);
    nodes.forEach(function (n) { n.classList.remove("hit"); });
    var hits = text ? nodes.filter(function (n) {
      return n.dataset.layer.toLowerCase().indexOf(text) >= 0;
    }) : [];
    hits.forEach(function (n) { n.classList.add("hit"); });
    document.getElementById("found").textContent = text ? hits.length + " found" : "";
    if (hits.length) { hits[0].scrollIntoView({block: "center", inline: "center"}); }
  }
  document.getElementById("search").addEventListener("input", search);

  var order = {};
  Array.prototype.forEach.call(document.querySelectorAll("#layers th"), function (th, k) {
    th.addEventListener("click", function () {
      order[k] = !order[k];
      var body = document.querySelector("#layers tbody");
      var full = data.levels[views.length - 1].rows;
      function cell(r) {
        var found = full.filter(function (x) { return x[0] === r.dataset.layer; })[0];
        return found ? found[k] : r.children[k].textContent;
      }
      rows.slice().sort(function (a, b) {
        var x = cell(a), y = cell(b);
        var c = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
        return order[k] ? c : -c;
      }).forEach(function (r) { body.appendChild(r); });
    });
  });
})();
