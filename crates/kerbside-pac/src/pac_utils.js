// The standard PAC functions (Netscape's 1996 list, as browsers implement
// them), written for kerbside. myIpAddress() and dnsResolve(host) are native:
// the address of the route to the outside, and a bounded look-up that returns
// null for a name that does not resolve.
"use strict";

function dnsDomainIs(host, domain) {
    host = String(host); domain = String(domain);
    return host.length >= domain.length &&
        host.substring(host.length - domain.length) === domain;
}

function dnsDomainLevels(host) {
    return String(host).split(".").length - 1;
}

function isPlainHostName(host) {
    host = String(host);
    return host.indexOf(".") === -1 && host.indexOf(":") === -1;
}

function localHostOrDomainIs(host, hostdom) {
    host = String(host); hostdom = String(hostdom);
    return host === hostdom || hostdom.lastIndexOf(host + ".", 0) === 0;
}

function dnsResolve(host) {
    var ip = __kerbside_dns_resolve(String(host));
    return ip === "" ? null : ip;
}

function isResolvable(host) {
    return dnsResolve(host) !== null;
}

function isResolvableEx(host) {
    return dnsResolveEx(host) !== "";
}

function dnsResolveEx(host) {
    var ip = dnsResolve(host);
    return ip === null ? "" : ip;
}

function myIpAddressEx() {
    return myIpAddress();
}

function convert_addr(ipchars) {
    var bytes = String(ipchars).split(".");
    return (((bytes[0] & 0xff) << 24) |
            ((bytes[1] & 0xff) << 16) |
            ((bytes[2] & 0xff) << 8) |
            (bytes[3] & 0xff)) >>> 0;
}

function __kerbside_is_ipv4(text) {
    return /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(String(text));
}

function isInNet(ipaddr, pattern, maskstr) {
    if (!__kerbside_is_ipv4(pattern) || !__kerbside_is_ipv4(maskstr)) {
        return false;
    }
    var ip = __kerbside_is_ipv4(ipaddr) ? String(ipaddr) : dnsResolve(ipaddr);
    if (ip === null) {
        return false;
    }
    var mask = convert_addr(maskstr);
    return ((convert_addr(ip) & mask) >>> 0) === ((convert_addr(pattern) & mask) >>> 0);
}

function shExpMatch(url, pattern) {
    var re = String(pattern)
        .replace(/[.+^${}()|[\]\\\/]/g, "\\$&")
        .replace(/\*/g, ".*")
        .replace(/\?/g, ".");
    return new RegExp("^" + re + "$").test(String(url));
}

var __kerbside_days = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
var __kerbside_months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                         "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];

// The clock the time functions read (a function, so tests can set it).
function __kerbside_now() {
    return new Date();
}

function weekdayRange(wd1, wd2, gmt) {
    var args = Array.prototype.slice.call(arguments);
    var utc = args.length > 0 && args[args.length - 1] === "GMT";
    if (utc) { args.pop(); }
    var now = __kerbside_now();
    var today = utc ? now.getUTCDay() : now.getDay();
    var d1 = __kerbside_days.indexOf(String(args[0]));
    var d2 = args.length > 1 ? __kerbside_days.indexOf(String(args[1])) : d1;
    if (d1 < 0 || d2 < 0) { return false; }
    return d1 <= d2 ? (d1 <= today && today <= d2) : (today >= d1 || today <= d2);
}

function dateRange() {
    var args = Array.prototype.slice.call(arguments);
    var utc = args.length > 0 && args[args.length - 1] === "GMT";
    if (utc) { args.pop(); }
    var now = __kerbside_now();
    var cur = {
        day: utc ? now.getUTCDate() : now.getDate(),
        month: utc ? now.getUTCMonth() : now.getMonth(),
        year: utc ? now.getUTCFullYear() : now.getFullYear()
    };
    // Each argument is a day (1..31), a month name or a year (four digits).
    function kind(a) {
        if (typeof a === "string" && __kerbside_months.indexOf(a) >= 0) { return "month"; }
        var n = Number(a);
        if (!isFinite(n) || Math.floor(n) !== n) { return null; }
        return n > 31 ? "year" : "day";
    }
    function value(a, k) {
        return k === "month" ? __kerbside_months.indexOf(a) : Number(a);
    }
    if (args.length === 0) { return false; }
    var kinds = args.map(kind);
    if (kinds.indexOf(null) >= 0) { return false; }
    var half = args.length / 2;
    if (args.length === 1) {
        return cur[kinds[0]] === value(args[0], kinds[0]);
    }
    if (args.length % 2 !== 0) { return false; }
    for (var i = 0; i < half; i++) {
        if (kinds[i] !== kinds[i + half]) { return false; }
    }
    // Compare (year, month, day) tuples made of the fields given.
    function key(vals, ks) {
        var y = 0, m = 0, d = 0;
        for (var j = 0; j < ks.length; j++) {
            if (ks[j] === "year") { y = vals[j]; }
            if (ks[j] === "month") { m = vals[j]; }
            if (ks[j] === "day") { d = vals[j]; }
        }
        return y * 10000 + m * 100 + d;
    }
    var ks = kinds.slice(0, half);
    var from = key(args.slice(0, half).map(function (a, j) { return value(a, ks[j]); }), ks);
    var to = key(args.slice(half).map(function (a, j) { return value(a, ks[j]); }), ks);
    var now_key = key(ks.map(function (k) { return cur[k]; }), ks);
    return from <= to ? (from <= now_key && now_key <= to) : (now_key >= from || now_key <= to);
}

function timeRange() {
    var args = Array.prototype.slice.call(arguments);
    var utc = args.length > 0 && args[args.length - 1] === "GMT";
    if (utc) { args.pop(); }
    var now = __kerbside_now();
    var h = utc ? now.getUTCHours() : now.getHours();
    var m = utc ? now.getUTCMinutes() : now.getMinutes();
    var s = utc ? now.getUTCSeconds() : now.getSeconds();
    var nums = args.map(Number);
    for (var i = 0; i < nums.length; i++) {
        if (!isFinite(nums[i])) { return false; }
    }
    var cur, from, to;
    switch (nums.length) {
    case 1: return h === nums[0];
    case 2: cur = h; from = nums[0]; to = nums[1];
        // timeRange(9, 17): from 9:00 until 16:59:59.
        return from <= to ? (from <= cur && cur < to) : (cur >= from || cur < to);
    case 4: cur = h * 60 + m; from = nums[0] * 60 + nums[1]; to = nums[2] * 60 + nums[3]; break;
    case 6: cur = h * 3600 + m * 60 + s; from = nums[0] * 3600 + nums[1] * 60 + nums[2];
        to = nums[3] * 3600 + nums[4] * 60 + nums[5]; break;
    default: return false;
    }
    return from <= to ? (from <= cur && cur <= to) : (cur >= from || cur <= to);
}

function alert(message) {
    __kerbside_alert(String(message));
}
