"""Mean kinetic temperature (ICH Q1A(R2), USP <1079> and <1079.2>; Haynes, J. Pharm. Sci. 60:927, 1971).

    T_mkt[K] = (ΔH/R) / -ln( Σ w_i·exp(-ΔH/(R·T_i)) / Σ w_i )        T_i in kelvin (°C + 273.15)

The default ΔH is 83.144 kJ/mol with R = 8.3144 J/(mol·K), so ΔH/R = 10 000 K exactly; ΔH is a profile setting
(a Berlinger Q-tag uses 83.0 kJ/mol).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from coldchain.domain.profiles import DEFAULT_ACTIVATION_ENERGY_KJ_MOL
from coldchain.domain.readings import Reading

__all__ = [
    "GAS_CONSTANT_J_MOL_K",
    "KELVIN_OFFSET",
    "arrhenius_weight",
    "dh_over_r_k",
    "mean_kinetic_temperature",
    "mean_kinetic_temperature_equal_intervals",
    "mkt_from_sums",
]

#: R in J/(mol·K), the value USP <1079.2> pairs with ΔH = 83.144 kJ/mol.
GAS_CONSTANT_J_MOL_K = 8.3144
#: 0 °C in kelvin.
KELVIN_OFFSET = 273.15


def dh_over_r_k(activation_energy_kj_mol: float = DEFAULT_ACTIVATION_ENERGY_KJ_MOL) -> float:
    """ΔH/R in kelvin for an activation energy in kJ/mol (83.144 kJ/mol → 10 000 K)."""
    if not math.isfinite(activation_energy_kj_mol) or activation_energy_kj_mol <= 0:
        raise ValueError(f"activation energy must be > 0 kJ/mol, got {activation_energy_kj_mol}")
    return activation_energy_kj_mol * 1000.0 / GAS_CONSTANT_J_MOL_K


def arrhenius_weight(temperature_c: float, dh_over_r: float) -> float:
    """exp(-ΔH/(R·T)) for one temperature: the term the MKT formula averages."""
    return math.exp(-dh_over_r / (temperature_c + KELVIN_OFFSET))


def mkt_from_sums(weighted_sum: float, total_weight: float, dh_over_r: float) -> float:
    """MKT in °C from Σ w_i·exp(-ΔH/(R·T_i)) and Σ w_i (the weights in any unit, they cancel)."""
    if total_weight <= 0:
        raise ValueError("MKT needs a positive total weight")
    return dh_over_r / -math.log(weighted_sum / total_weight) - KELVIN_OFFSET


def mean_kinetic_temperature_equal_intervals(
    temperatures_c: Iterable[float], *, activation_energy_kj_mol: float = DEFAULT_ACTIVATION_ENERGY_KJ_MOL
) -> float:
    """MKT of temperatures logged at equal intervals: every reading weighs the same.

    USP <1079.2>'s own worked example: 2, 2, 5, 8, 8, 8, 8 °C → 6.25 °C.
    """
    dh_over_r = dh_over_r_k(activation_energy_kj_mol)
    weighted_sum = 0.0
    count = 0
    for temperature_c in temperatures_c:
        if not math.isfinite(temperature_c):
            raise ValueError(f"not a temperature: {temperature_c}")
        weighted_sum += arrhenius_weight(temperature_c, dh_over_r)
        count += 1
    if count == 0:
        raise ValueError("MKT of no temperatures")
    return mkt_from_sums(weighted_sum, float(count), dh_over_r)


def mean_kinetic_temperature(
    readings: Iterable[Reading],
    *,
    max_gap_min: float,
    activation_energy_kj_mol: float = DEFAULT_ACTIVATION_ENERGY_KJ_MOL,
    until: datetime | None = None,
) -> float:
    """Duration-weighted MKT of readings in device time order (USP <1079.2>, REFERENCE §1).

    Convention (left rectangle, sample and hold): each reading's temperature holds from its own time until the
    next reading, so reading i weighs t[i+1] − t[i] and the last reading weighs nothing until a later one
    arrives. This is what a logger knows at each moment: the value it measured stays the best knowledge until
    the next measurement, and no reading is ever credited with time before it was taken. An interval longer
    than ``max_gap_min`` is a data gap: it is not credited to anyone (a gap is reported, not interpolated). A
    reading without a valid temperature (``None``, NaN) ends the previous reading's interval and credits
    nothing itself.

    ``until`` closes the record (a logger's stop time, a shipment's delivery): the last reading then holds
    until that moment too (not across a gap). A Berlinger Q-tag's printed MKT is reproduced this way: with its
    stop time, 10.56 °C for a run it prints as 10.5 (it truncates), where stopping at the last reading would
    give 10.32 °C.

    With readings at t = 0, 1, 2, 2.5, 6, 8 h and 5, 5, 12, 12, 6, 5 °C this convention gives 9.37 °C (the
    trapezoid rule would give 8.35 °C, unweighted readings 8.15 °C). With equal intervals it equals
    :func:`mean_kinetic_temperature_equal_intervals` of all readings but the last.

    Raises ``ValueError`` when no time at all can be credited.
    """
    dh_over_r = dh_over_r_k(activation_energy_kj_mol)
    max_gap_s = max_gap_min * 60.0
    weighted_sum = 0.0
    total_min = 0.0
    previous_s: float | None = None
    previous_weight: float | None = None
    for reading in readings:
        time_s = reading.device_time.timestamp()
        if previous_s is not None:
            if time_s < previous_s:
                raise ValueError(f"readings out of device time order at seq {reading.seq}")
            held_s = time_s - previous_s
            if previous_weight is not None and held_s <= max_gap_s:
                weighted_sum += previous_weight * (held_s / 60.0)
                total_min += held_s / 60.0
        temperature_c = reading.temperature_c
        if temperature_c is None or not math.isfinite(temperature_c):
            previous_weight = None
        else:
            previous_weight = arrhenius_weight(temperature_c, dh_over_r)
        previous_s = time_s
    if until is not None and previous_s is not None:
        held_s = until.timestamp() - previous_s
        if held_s < 0:
            raise ValueError("until is before the last reading")
        if previous_weight is not None and held_s <= max_gap_s:
            weighted_sum += previous_weight * (held_s / 60.0)
            total_min += held_s / 60.0
    if total_min <= 0:
        raise ValueError("MKT needs at least two readings with credited time between them")
    return mkt_from_sums(weighted_sum, total_min, dh_over_r)
