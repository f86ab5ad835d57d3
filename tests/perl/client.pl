#!/usr/bin/perl
# A Gearman client built on Perl's Gearman::Client (its own protocol code,
# not libgearman). Submits one job and prints every event as a JSON line:
#   {"event":"data","data":"..."} {"event":"status","num":N,"den":D}
#   {"event":"warning","data":"..."} {"event":"complete","data":"..."}
#   {"event":"fail"} {"event":"timeout"}
# usage: client.pl HOST:PORT FUNCTION ARG [UNIQUE] [TIMEOUT_S] [normal|high|low]
use strict;
use warnings;
use Gearman::Client;
use JSON::PP;
use Time::HiRes qw(time);

$| = 1;
my ($server, $func, $arg, $uniq, $timeout, $prio) = @ARGV;
die "usage: client.pl HOST:PORT FUNCTION ARG [UNIQUE] [TIMEOUT_S] [PRIORITY]\n" unless defined $arg;
# "hex:..." passes raw bytes (e.g. invalid UTF-8) through the command line.
$arg = pack('H*', substr($arg, 4)) if $arg =~ /^hex:/;
$timeout ||= 30;
$prio ||= 'normal';
my $json = JSON::PP->new->canonical->allow_nonref;
my $done = 0;

sub emit { my %e = @_; $e{t} = time; print $json->encode(\%e), "\n"; }

my $client = Gearman::Client->new(exceptions => 0);
$client->job_servers($server);
my $ts = $client->new_task_set;
my %opts = (
    on_data     => sub { emit(event => 'data', data => ${ $_[0] }); },
    on_status   => sub { emit(event => 'status', num => $_[0], den => $_[1]); },
    on_warning  => sub { emit(event => 'warning', data => ${ $_[0] }); },
    on_complete => sub { $done = 1; emit(event => 'complete', data => ${ $_[0] }); },
    on_fail     => sub { $done = 1; emit(event => 'fail'); },
    timeout     => $timeout,
);
$opts{uniq} = $uniq if defined $uniq && length $uniq;
$opts{high_priority} = 1 if $prio eq 'high';
my $handle = $ts->add_task($func, \$arg, \%opts);
emit(event => 'submitted', ok => defined $handle ? JSON::PP::true : JSON::PP::false);
eval { $ts->wait(timeout => $timeout); 1 } or emit(event => 'error', data => "$@");
emit(event => 'timeout') unless $done;
exit($done ? 0 : 1);
