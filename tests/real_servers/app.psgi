# A tiny PSGI app for the Starlet test: says which processes served the request.
# Starlet's master (the process the supervisor starts) takes the listener from
# SERVER_STARTER_PORT; a forked worker answers, so the body names both.
use strict;
use warnings;

sub {
    my $gen = $ENV{SERVER_STARTER_GENERATION} // '?';
    my $ppid = getppid();
    my $body = "pid=$$ ppid=$ppid gen=$gen\n";
    return [200, ['Content-Type' => 'text/plain', 'Content-Length' => length $body], [$body]];
};
