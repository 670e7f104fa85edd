package TAP::Formatter::Walctl;

# prove's console formatter, with every skipped test counted in the summary
# line ("Files=19, Tests=98, Skipped=1, ...") and listed with its reason
# above it, so that a skipped step is never mistaken for a passing one.
# make test runs prove with --formatter TAP::Formatter::Walctl.

use strict;
use warnings;
use parent 'TAP::Formatter::Console';

sub open_test {
	my ( $self, $test, $parser ) = @_;
	my $skips = $self->{walctl_skips} ||= [];
	$parser->callback(
		ALL => sub {
			my $r = shift;
			return unless ( $r->is_test || $r->is_plan ) && $r->has_skip;
			my $why = $r->explanation // '';
			push @$skips, $r->is_plan ? "$test (whole file): $why" : "$test, test " . $r->number . ": $why";
		}
	);
	return $self->SUPER::open_test( $test, $parser );
}

sub _output {
	my ( $self, @text ) = @_;
	my $s = join '', @text;
	if ( $s =~ /^Files=\d+, Tests=\d+, / ) {
		my @skips = @{ $self->{walctl_skips} || [] };
		my $n = @skips;
		$s =~ s/^(Files=\d+, Tests=\d+), /$1, Skipped=$n, /;
		$self->SUPER::_output("Skipped: $_\n") for @skips;
	}
	return $self->SUPER::_output($s);
}

1;
