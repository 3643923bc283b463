// 一卡通发放平台: confirmation dialogs and the roster upload's progress bar.
// Served from the binary; no external scripts.
(function () {
  "use strict";
  function csrf() { return document.body ? document.body.getAttribute("data-csrf") || "" : ""; }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var msg = form.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload");
    if (!form) { return; }
    form.addEventListener("submit", function (ev) {
      if (ev.defaultPrevented) { return; }
      ev.preventDefault();
      var bar = document.getElementById("progress");
      var text = document.getElementById("progress-text");
      var button = form.querySelector("button[type=submit]");
      bar.hidden = false;
      button.disabled = true;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) {
          var p = Math.round(e.loaded * 100 / e.total);
          bar.value = p;
          text.textContent = "已上传 " + p + "%";
        }
      };
      xhr.upload.onload = function () { bar.value = 100; text.textContent = "上传完成，正在校验和比对，请稍候……"; };
      xhr.onload = function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
        if (xhr.status === 200 && body.redirect) { window.location.href = body.redirect; return; }
        button.disabled = false;
        text.textContent = "上传失败：" + (body.message || ("HTTP " + xhr.status));
      };
      xhr.onerror = function () { button.disabled = false; text.textContent = "网络错误，上传未完成，请重试。"; };
      xhr.send(new FormData(form));
    });
  });
})();
