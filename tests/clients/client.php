<?php
// A Gearman client on PHP's pecl gearman (php-gearman, over libgearman):
// submits one job with GearmanClient::addTask and runTasks(), and prints
// every callback as one JSON line:
//   {"event":"created","handle":"H:..."}  {"event":"data","data":"..."}
//   {"event":"status","num":N,"den":D}    {"event":"warning","data":"..."}
//   {"event":"complete","data":"..."}     {"event":"fail"}
//   {"event":"exception","data":"..."}    {"event":"end","ok":bool,"rc":N,"error":"..."}
// usage: php client.php HOST PORT FUNCTION ARG [UNIQUE] [TIMEOUT_MS] [normal|high|low]
// An ARG of the form "hex:..." is passed as raw bytes.

function emit(array $e) {
    $e['t'] = microtime(true);
    echo json_encode($e, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
    flush();
}

if ($argc < 5) {
    fwrite(STDERR, "usage: client.php HOST PORT FUNCTION ARG [UNIQUE] [TIMEOUT_MS] [PRIORITY]\n");
    exit(2);
}
[$host, $port, $func, $arg] = array_slice($argv, 1, 4);
$unique = $argc > 5 && $argv[5] !== '' ? $argv[5] : null;
$timeout = $argc > 6 ? (int)$argv[6] : 30000;
$prio = $argc > 7 ? $argv[7] : 'normal';
if (strncmp($arg, 'hex:', 4) === 0) {
    $arg = hex2bin(substr($arg, 4));
}

$client = new GearmanClient();
$client->addServer($host, (int)$port);     // also asks for the "exceptions" option
$client->setTimeout($timeout);
$done = false;

$client->setCreatedCallback(function (GearmanTask $t) {
    emit(['event' => 'created', 'handle' => $t->jobHandle()]);
});
$client->setDataCallback(function (GearmanTask $t) {
    emit(['event' => 'data', 'data' => $t->data()]);
});
$client->setStatusCallback(function (GearmanTask $t) {
    emit(['event' => 'status', 'num' => $t->taskNumerator(), 'den' => $t->taskDenominator()]);
});
$client->setWarningCallback(function (GearmanTask $t) {
    emit(['event' => 'warning', 'data' => $t->data()]);
});
$client->setCompleteCallback(function (GearmanTask $t) use (&$done) {
    $done = true;
    emit(['event' => 'complete', 'data' => $t->data()]);
});
$client->setFailCallback(function (GearmanTask $t) use (&$done) {
    $done = true;
    emit(['event' => 'fail']);
});
$client->setExceptionCallback(function (GearmanTask $t) use (&$done) {
    $done = true;
    emit(['event' => 'exception', 'data' => $t->data()]);
});

$add = ['normal' => 'addTask', 'high' => 'addTaskHigh', 'low' => 'addTaskLow'][$prio];
$task = $client->$add($func, $arg, null, $unique);
emit(['event' => 'submitted', 'ok' => $task !== false]);
$ok = $client->runTasks();
emit(['event' => 'end', 'ok' => (bool)$ok, 'rc' => $client->returnCode(), 'error' => (string)$client->error()]);
exit($done ? 0 : 1);
