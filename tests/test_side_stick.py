"""The side stick (cross-stick, GM 37): its own class in eight-class models, a snare to older models,
labelled as a snare where the rendering kit has no cross-stick sound, and written as GM 37 and as an
x on the snare line."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
import music21
import numpy as np
import pretty_midi
import pytest
import torch
from tatumdrum.data.build import crop_and_quantise, fold_class
from tatumdrum.data.kits import kit_has_side_stick, list_kits
from tatumdrum.data.synthesis import Kit, timgm_path
from tatumdrum.instruments import ALL_INSTRUMENTS, EIGHT_CLASSES, SEVEN_CLASSES, THREE_CLASSES, note_to_row
from tatumdrum.metrics import score_onsets
from tatumdrum.writers.midi import read_midi_onsets, write_midi
from tatumdrum.model import CRNNConfig, TatumCRNN
from tatumdrum.writers.musicxml import write_musicxml
from tatumdrum.score import DrumScore
from tatumdrum.tatums import BeatGrid
from tatumdrum.training import init_from
from tatumdrum.weights import TrainedModel
from tatumdrum.decisions import DecisionPolicy

ROW = {i.abbrev: k for k, i in enumerate(EIGHT_CLASSES)}


def _bossa_score() -> DrumScore:
    """Two bars: kick on 1 and 3, cross-stick on the bossa clave's strokes, hats on 8ths, one snare."""
    grid = BeatGrid.regular(120.0, 8, start=0.2)
    on = np.zeros((8, 32), dtype=bool)
    vel = np.zeros((8, 32), dtype=np.float32)
    for m in (0, 8, 16, 24):
        on[ROW["BD"], m], vel[ROW["BD"], m] = True, 90 / 127
    for m in (0, 6, 12, 20, 26):
        on[ROW["SS"], m], vel[ROW["SS"], m] = True, 80 / 127
    for m in range(0, 32, 2):
        on[ROW["HH"], m], vel[ROW["HH"], m] = True, 70 / 127
    on[ROW["SD"], 28], vel[ROW["SD"], 28] = True, 110 / 127
    return DrumScore(grid, 4, on, EIGHT_CLASSES, probabilities=on * 0.9, velocities=vel)


def test_side_stick_is_a_class_of_its_own_and_a_snare_to_older_models():
    assert ALL_INSTRUMENTS == EIGHT_CLASSES
    assert note_to_row(EIGHT_CLASSES)[37] == ROW["SS"] and note_to_row(EIGHT_CLASSES)[38] == ROW["SD"]
    assert note_to_row(SEVEN_CLASSES)[37] == note_to_row(SEVEN_CLASSES)[38] == 1
    assert note_to_row(THREE_CLASSES)[37] == 1
    # Scored as MDB Drums scores it: a side stick is no snare, so calling it one is a false snare.
    reference = {"SD": np.array([1.0]), "SS": np.array([2.0])}
    right = score_onsets(reference, {"SD": np.array([1.0]), "SS": np.array([2.0])})
    wrong = score_onsets(reference, {"SD": np.array([1.0, 2.0])})
    assert right["SD"].precision == 1.0 and right["SS"].recall == 1.0
    assert wrong["SD"].precision == 0.5 and wrong["SS"].recall == 0.0 and wrong["all"].precision == 0.5


def test_side_stick_in_midi_and_musicxml(tmp_path):
    score = _bossa_score()
    midi = tmp_path / "bossa.mid"
    write_midi(score, midi)
    pm = pretty_midi.PrettyMIDI(str(midi))
    sticks = sorted(round(n.start, 3) for n in pm.instruments[0].notes if n.pitch == 37)
    assert sticks == [round(float(score.tatum_times[m]), 3) for m in (0, 6, 12, 20, 26)]
    assert [n.velocity for n in pm.instruments[0].notes if n.pitch == 37] == [80] * 5
    assert read_midi_onsets(midi, EIGHT_CLASSES)["SS"].size == 5
    # A seven-class reader hears the cross-sticks as snares.
    assert read_midi_onsets(midi, SEVEN_CLASSES)["SD"].size == 6

    xml = tmp_path / "bossa.musicxml"
    write_musicxml(score, xml)
    root = ET.parse(xml).getroot()
    names = {si.get("id"): si.findtext("instrument-name") for si in root.iter("score-instrument")}
    midi_of = {mi.get("id"): mi.findtext("midi-unpitched") for mi in root.iter("midi-instrument")}
    stick_id = next(i for i, n in names.items() if n == "Side Stick")
    assert midi_of[stick_id] == "38"  # MusicXML counts unpitched notes from 1: GM 37
    notes = [n for n in root.iter("note") if n.find("instrument") is not None
             and n.find("instrument").get("id") == stick_id]
    assert len(notes) == 5
    assert {(n.findtext("unpitched/display-step"), n.findtext("unpitched/display-octave")) for n in notes} == {("C", "5")}
    assert {n.findtext("notehead") for n in notes} == {"x"}
    parsed = music21.converter.parse(str(xml))
    assert sum(len(getattr(n, "notes", [n])) for n in parsed.recurse().notes) == int(score.onsets.sum())


def _groove_with_cross_stick() -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    drums = pretty_midi.Instrument(0, is_drum=True)
    for i in range(16):
        t = i * 0.25
        drums.notes.append(pretty_midi.Note(70, 42, t, t + 0.05))
        if i % 4 == 0:
            drums.notes.append(pretty_midi.Note(100, 36, t, t + 0.05))
        if i % 4 == 2:
            drums.notes.append(pretty_midi.Note(90, 37, t, t + 0.05))
    drums.notes.append(pretty_midi.Note(120, 38, 3.5, 3.55))  # one snare shares a tatum with a cross-stick
    pm.instruments.append(drums)
    return pm


def test_a_kit_without_a_cross_stick_labels_it_as_a_snare():
    crop = crop_and_quantise(_groove_with_cross_stick(), 60.0, 4, EIGHT_CLASSES)
    ss, sd = ROW["SS"], ROW["SD"]
    assert crop.targets[ss].sum() == 4 and crop.targets[sd].sum() == 1
    folded = fold_class(crop, "SS", "SD")
    assert folded.targets[ss].sum() == 0 and folded.targets[sd].sum() == 4  # 3.5 s holds both
    assert len(folded.onsets[sd]) == 5 and len(folded.onsets[ss]) == 0
    m = int(np.flatnonzero(crop.targets[sd])[0])
    assert folded.velocities[sd, m] == pytest.approx(120 / 127)  # the louder stroke of the two
    assert folded.targets.sum() == crop.targets.sum() - 1
    # Nothing to fold in a model without the class.
    assert fold_class(crop_and_quantise(_groove_with_cross_stick(), 60.0, 4, SEVEN_CLASSES), "SS", "SD").targets.shape[0] == 7

    # Real kits: the GM soundfont kits play note 37 as a side stick; a recorded multi-mic kit has none.
    timgm = Kit("TimGM6mb/Standard", "soundfont", timgm_path(), 128, 0, "TimGM6mb")
    assert kit_has_side_stick(timgm)
    assert not kit_has_side_stick(Kit("multimic/x", "multimic", Path("/nonexistent"), family="multimic"))
    hydrogen = [k for k in list_kits() if k.kind == "hydrogen"]
    if hydrogen:
        from tatumdrum.data.hydrogen import hydrogen_kit

        for kit in hydrogen:
            assert kit_has_side_stick(kit) == bool(hydrogen_kit(kit.path).roles.get("stick"))


def test_a_new_class_starts_from_the_class_it_folds_into():
    torch.manual_seed(0)
    seven = TrainedModel(TatumCRNN(CRNNConfig(n_instruments=7, velocity=True)), "tatum", SEVEN_CLASSES,
                         DecisionPolicy.uniform(SEVEN_CLASSES, 0.4))
    eight = TatumCRNN(CRNNConfig(n_instruments=8, velocity=True))
    assert init_from(eight, seven, EIGHT_CLASSES) == ["SS"]
    src = seven.net.state_dict()
    for name, tensor in eight.state_dict().items():
        if name.startswith(("fc.", "velocity_fc.")):
            for k, inst in enumerate(EIGHT_CLASSES):
                row = SEVEN_CLASSES.index(inst) if inst in SEVEN_CLASSES else 1
                assert torch.equal(tensor[k], src[name][row])
        else:
            assert torch.equal(tensor, src[name])
    # The same audio gives the side stick the snare's probabilities until training tells them apart.
    mel = torch.rand(1, 400, 80)
    spans = [torch.tensor([[i * 10, i * 10 + 10] for i in range(40)])]
    seven.net.eval(), eight.eval()
    with torch.no_grad():
        p7, p8 = seven.net(mel, spans), eight(mel, spans)
    assert torch.allclose(p8[0, ROW["SS"]], p7[0, 1]) and torch.allclose(p8[0, ROW["HH"]], p7[0, 2])
    with pytest.raises(ValueError, match="--channels"):
        init_from(TatumCRNN(CRNNConfig(n_instruments=8, channels=(8, 16), velocity=True)), seven, EIGHT_CLASSES)


def test_training_pieces_fold_to_the_classes_asked_for():
    from tatumdrum.dataset import Piece, with_classes

    grid = BeatGrid(np.arange(9) * 0.5, np.arange(9) % 4 + 1)
    targets = np.zeros((8, 32), np.uint8)
    targets[ROW["SD"], [4, 12]] = 1
    targets[ROW["SS"], [6, 12]] = 1  # one cross-stick on its own, one on a snare's tatum
    targets[ROW["OH"], 2] = 1
    velocities = targets * 90
    velocities[ROW["SS"], 12] = 120
    onsets = {"SD": np.array([0.5, 1.5]), "SS": np.array([0.75, 1.5]), "OH": np.array([0.25])}
    mel = np.zeros((500, 80), np.float16)
    piece = Piece("p", {"drums": mel, "mix": mel}, np.arange(32) * 0.125, targets, np.full(32, 16),
                  np.arange(0, 32, 16), onsets, grid, 4, EIGHT_CLASSES, velocities)
    seven = with_classes(piece, SEVEN_CLASSES)
    assert seven.instruments == SEVEN_CLASSES and seven.targets.shape == (7, 32)
    assert np.flatnonzero(seven.targets[1]).tolist() == [4, 6, 12] and seven.velocities[1, 12] == 120
    assert seven.onset_times["SD"].tolist() == [0.5, 0.75, 1.5, 1.5] and seven.targets[3, 2] == 1
    three = with_classes(piece, THREE_CLASSES)  # the open hi-hat folds into the hi-hat
    assert np.flatnonzero(three.targets[2]).tolist() == [2] and three.targets.sum() == 4
    assert with_classes(piece, EIGHT_CLASSES) is piece


def test_a_rare_class_can_weigh_its_strokes_more():
    from tatumdrum.losses import transcription_loss
    from tatumdrum.training import positive_weights

    gamma = positive_weights(1.0, {"SS": 8.0}, EIGHT_CLASSES)
    assert gamma.shape == (8, 1) and gamma[ROW["SS"], 0] == 8.0 and gamma.sum() == 15.0
    assert positive_weights(0.46, None, EIGHT_CLASSES) == 0.46
    with pytest.raises(ValueError, match="SS"):
        positive_weights(1.0, {"SS": 8.0}, SEVEN_CLASSES)
    torch.manual_seed(0)
    logits = torch.randn(2, 8, 16, requires_grad=True)
    target = (torch.rand(2, 8, 16) < 0.3).float()
    phi = torch.sigmoid(logits)
    # Eq. 4 row by row: each class's positive term carries its own gamma, the negative term none.
    manual = -(gamma * target * torch.log(phi) + (1 - target) * torch.log(1 - phi)).mean()
    loss = transcription_loss(logits, target, gamma)
    assert loss.item() == pytest.approx(manual.item(), rel=1e-6)
    loss.backward()
    plain = logits.detach().clone().requires_grad_(True)
    transcription_loss(plain, target, 1.0).backward()
    on = target.bool()
    # Eight times the push towards a side stick where one is played; the other classes as before.
    assert torch.allclose(logits.grad[:, ROW["SS"]][on[:, ROW["SS"]]], 8 * plain.grad[:, ROW["SS"]][on[:, ROW["SS"]]])
    others = [k for k in range(8) if k != ROW["SS"]]
    assert torch.allclose(logits.grad[:, others], plain.grad[:, others])
