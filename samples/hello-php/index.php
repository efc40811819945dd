<?php
// A minimal PHP app: answers every request with a greeting.
header('Content-Type: text/plain');
echo 'Hello from dropwarden! (php ' . PHP_VERSION . ")\n";
