// iqabench board: sortable, filterable tables. No library, no network.
// A header click sorts its table by the cells' data-v (numbers for class "num",
// text otherwise; cells without a value last); a second click reverses.
// The search box above a table keeps the rows that contain every typed word.
(function () {
  "use strict";

  function sortTable(table, index, numeric, th) {
    var body = table.tBodies[0];
    var descending = th.getAttribute("aria-sort") === "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, i) {
      var raw = row.cells[index].getAttribute("data-v");
      var value = numeric ? (raw === "" || raw === null ? NaN : parseFloat(raw)) : (raw || "");
      return { row: row, value: value, i: i };
    });
    keyed.sort(function (a, b) {
      var missingA = numeric ? isNaN(a.value) : a.value === "";
      var missingB = numeric ? isNaN(b.value) : b.value === "";
      if (missingA !== missingB) { return missingA ? 1 : -1; }
      var order = 0;
      if (!missingA) {
        order = numeric ? a.value - b.value : a.value.localeCompare(b.value, undefined, { numeric: true });
      }
      if (descending) { order = -order; }
      return order || a.i - b.i;
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
  }

  function filterTable(table, query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var text = row.textContent.toLowerCase();
      row.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
    });
  }

  document.querySelectorAll("table.board").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      th.querySelector("button").addEventListener("click", function () {
        sortTable(table, index, th.classList.contains("num"), th);
      });
    });
  });
  document.querySelectorAll("input.filter").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    input.addEventListener("input", function () { filterTable(table, input.value); });
  });
})();
