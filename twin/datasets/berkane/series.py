"""Time series of the Berkane model: PV availability, electric load by customer class, temperature, tariff.

PV availability comes from a solar-position and clear-sky model (pvlib: Ineichen clear sky with the
Linke turbidity climatology pvlib ships, Perez-free isotropic transposition to the plane of array) for
Berkane's coordinates, scaled by a documented monthly cloudiness factor so that the annual yield lands in
the 1,650–1,800 kWh/kWp/yr the facts give for coastal north-east Morocco [E], with a cell-temperature
correction and a fixed derate.  pvlib is needed only to *regenerate* the series (the generator script);
the stored CSV files are what the twin loads.  Morocco keeps UTC+1 all year (outside Ramadan); the series
use that fixed offset.

Load profiles by class (hourly multipliers of each class's summer evening peak) and the time-of-use
tariff are estimates [E] shaped on the facts (national evening peak dominant, 5-hour evening peak period,
bi-/tri-horaire tariffs); they are parameters for scenarios, to be replaced with measured profiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .frame import CENTRE_LAT, CENTRE_LON

__all__ = ["SEASON_DAYS", "CLOUDINESS", "TILT_DEG", "pv_availability", "annual_pv_yield_kwh_per_kwp",
           "class_profiles", "air_temperature", "tou_tariff", "day_series"]

TZ = "Etc/GMT-1"  # UTC+1 (pvlib/tz database sign convention)
SEASON_DAYS = {"summer": "2026-07-15", "winter": "2026-01-15"}
# monthly clear-sky index (fraction of clear-sky output actually produced) [E]: fewer clear days Nov–Mar
CLOUDINESS = np.array([0.76, 0.78, 0.80, 0.83, 0.87, 0.92, 0.95, 0.94, 0.89, 0.84, 0.78, 0.75])
TILT_DEG = 25.0  # fixed tilt, south-facing [E]
DERATE = 0.86  # inverter, wiring, soiling, mismatch [E]
GAMMA_PER_C = -0.004  # power temperature coefficient of crystalline silicon [E]


def air_temperature(index: pd.DatetimeIndex) -> pd.Series:
    """Air temperature (°C) by hour: a sinusoid between the daily minimum (06 h) and maximum (15 h) of each
    month, from the Oujda-Angad proxy of the facts (annual mean 17.2 °C, Jul–Aug ~28 °C mean with highs
    to ~38 °C, Dec–Jan ~10 °C) [S proxy / shape E]."""
    tmean = np.array([10.5, 11.5, 13.5, 15.5, 18.5, 22.5, 27.0, 27.5, 24.0, 19.5, 14.5, 11.0])
    swing = np.array([8.0, 8.0, 9.0, 9.5, 10.0, 11.0, 12.0, 12.0, 10.5, 9.5, 8.5, 8.0])  # max − min
    m = index.month.to_numpy() - 1
    h = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    phase = np.cos((h - 15.0) / 24.0 * 2 * np.pi)  # +1 at 15 h, −1 at 03 h
    return pd.Series(tmean[m] + 0.5 * swing[m] * phase, index=index, name="air_temperature_c")


def pv_availability(index: pd.DatetimeIndex, tilt_deg: float = TILT_DEG, azimuth_deg: float = 180.0,
                    cloudiness: np.ndarray = CLOUDINESS) -> pd.Series:
    """PV output per unit of installed peak power (p.u. of kWp, i.e. ``generator.p_max_pu``) at each
    timestamp of ``index`` (naive local times, UTC+1; each value is the mean over the interval starting
    there, evaluated at its midpoint)."""
    import pvlib  # only the generator needs it

    step = (index[1] - index[0]) if len(index) > 1 else pd.Timedelta(hours=1)
    mid = (index + step / 2).tz_localize(TZ)
    loc = pvlib.location.Location(CENTRE_LAT, CENTRE_LON, tz=TZ, altitude=168.0)
    sp = loc.get_solarposition(mid)
    cs = loc.get_clearsky(mid, solar_position=sp)
    poa = pvlib.irradiance.get_total_irradiance(tilt_deg, azimuth_deg, sp["apparent_zenith"], sp["azimuth"],
                                                cs["dni"], cs["ghi"], cs["dhi"])["poa_global"].to_numpy()
    k = cloudiness[mid.month.to_numpy() - 1]
    poa = poa * k
    t_air = air_temperature(index).to_numpy()
    t_cell = pvlib.temperature.faiman(poa, t_air, wind_speed=2.0)
    p = poa / 1000.0 * (1.0 + GAMMA_PER_C * (t_cell - 25.0)) * DERATE
    return pd.Series(np.clip(p, 0.0, 1.0), index=index, name="pv_pu")


def annual_pv_yield_kwh_per_kwp(year: int = 2026) -> float:
    """Specific yield (kWh/kWp/yr) of :func:`pv_availability` over a year, hourly."""
    idx = pd.date_range(f"{year}-01-01", f"{year + 1}-01-01", freq="h", inclusive="left")
    return float(pv_availability(idx).sum())


# class profiles: multipliers of the class's summer evening peak, hours 0..23 [E]
_RESIDENTIAL_SUMMER = [0.62, 0.55, 0.50, 0.47, 0.46, 0.48, 0.52, 0.58, 0.62, 0.64, 0.66, 0.70,
                       0.74, 0.76, 0.75, 0.73, 0.74, 0.78, 0.85, 0.93, 0.98, 1.00, 0.92, 0.76]
_RESIDENTIAL_WINTER = [0.50, 0.45, 0.42, 0.41, 0.42, 0.46, 0.56, 0.68, 0.66, 0.60, 0.57, 0.56,
                       0.58, 0.57, 0.54, 0.53, 0.57, 0.70, 0.88, 0.95, 0.92, 0.84, 0.72, 0.58]
_COMMERCIAL_SUMMER = [0.30, 0.28, 0.27, 0.27, 0.28, 0.30, 0.38, 0.55, 0.75, 0.88, 0.95, 1.00,
                      0.98, 0.92, 0.90, 0.94, 0.97, 0.95, 0.90, 0.85, 0.78, 0.62, 0.45, 0.35]
_COMMERCIAL_WINTER = [0.28, 0.26, 0.25, 0.25, 0.26, 0.28, 0.35, 0.50, 0.68, 0.78, 0.82, 0.84,
                      0.82, 0.78, 0.77, 0.79, 0.82, 0.85, 0.86, 0.80, 0.70, 0.55, 0.40, 0.32]
_INDUSTRY = [0.70, 0.68, 0.68, 0.68, 0.70, 0.75, 0.85, 0.95, 1.00, 1.00, 1.00, 0.98,
             0.95, 0.97, 1.00, 1.00, 0.98, 0.92, 0.85, 0.80, 0.78, 0.76, 0.74, 0.72]


def _lighting(index: pd.DatetimeIndex) -> np.ndarray:
    """Public lighting on from dusk to dawn (sun below the horizon at the hour's midpoint): 1 or 0."""
    import pvlib

    step = (index[1] - index[0]) if len(index) > 1 else pd.Timedelta(hours=1)
    mid = (index + step / 2).tz_localize(TZ)
    el = pvlib.solarposition.get_solarposition(mid, CENTRE_LAT, CENTRE_LON)["apparent_elevation"].to_numpy()
    return (el < -0.8).astype(float)


def class_profiles(index: pd.DatetimeIndex, season: str) -> pd.DataFrame:
    """Hourly multipliers (of the summer evening peak) for ``residential``, ``commercial``, ``industry``
    and ``lighting`` at each timestamp (hourly index)."""
    h = index.hour.to_numpy()
    res = np.array(_RESIDENTIAL_SUMMER if season == "summer" else _RESIDENTIAL_WINTER)[h]
    com = np.array(_COMMERCIAL_SUMMER if season == "summer" else _COMMERCIAL_WINTER)[h]
    ind = np.array(_INDUSTRY)[h] * (1.0 if season == "summer" else 0.95)
    return pd.DataFrame({"residential": res, "commercial": com, "industry": ind, "lighting": _lighting(index)},
                        index=index)


# time-of-use periods [E, facts §5: a 5-hour evening peak, off-peak overnight, full otherwise; prices are
# parameters in MAD/kWh, placeholders until the ONEE/SRM medium-voltage schedule is obtained]
TARIFF_PERIODS = {"summer": [(23, 7, "off_peak"), (7, 18, "full"), (18, 23, "peak")],
                  "winter": [(22, 7, "off_peak"), (7, 17, "full"), (17, 22, "peak")]}
TARIFF_PRICES = {"off_peak": 0.65, "full": 0.95, "peak": 1.40}


def tou_tariff(index: pd.DatetimeIndex, season: str) -> pd.DataFrame:
    """Time-of-use period and price (MAD/kWh) at each timestamp."""
    h = index.hour.to_numpy()
    period = np.empty(len(index), dtype=object)
    for a, b, name in TARIFF_PERIODS[season]:
        inside = (h >= a) & (h < b) if a < b else (h >= a) | (h < b)
        period[inside] = name
    price = np.array([TARIFF_PRICES[p] for p in period])
    return pd.DataFrame({"tariff_period": period, "price_mad_kwh": price}, index=index)


def day_series(season: str, freq: str = "h") -> pd.DataFrame:
    """All series of a typical ``season`` day ('summer' or 'winter'): PV availability (rooftop and the
    utility plant, same tilt), class multipliers, air temperature, tariff."""
    if season not in SEASON_DAYS:
        raise ValueError(f"season must be one of {sorted(SEASON_DAYS)}, got {season!r}")
    day = pd.Timestamp(SEASON_DAYS[season])
    index = pd.date_range(day, day + pd.Timedelta(days=1), freq=freq, inclusive="left", name="time")
    pv = pv_availability(index)
    out = pd.concat([pv.rename("pv_rooftop_pu"), pv_availability(index, tilt_deg=30.0).rename("pv_plant_pu"),
                     class_profiles(index, season), air_temperature(index), tou_tariff(index, season)], axis=1)
    return out
