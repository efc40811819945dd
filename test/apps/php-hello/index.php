<?php
header('Content-Type: text/plain');
echo "Hello from php " . PHP_MAJOR_VERSION . "\n";
